"""Accounts: a company's domain, normalised, so two leads of one company find each other, and
the named-accounts CSV (`domain,owner`) read line by line with its problems named by line.

Free mail is nobody's account: a lead from a personal mailbox never matches another lead, nor a
named account. `domain in FREE_MAIL` holds for
- a domain of the list below: the big webmail providers and the big ISPs' mailboxes
  (bigpond.net.au, btinternet.com, comcast.net, t-online.de, orange.fr, libero.it, …);
- a big provider's label under a public suffix (`FREE_MAIL_PROVIDERS`): `com` or `net`, a
  country code (`de`, `fr`), or a second level under one (`com.au`, `co.uk`, `co.jp`,
  `ne.jp`), so hotmail.com.au, outlook.co.uk, yahoo.co.jp and gmx.at are free mail without
  listing every country. Only labels that are free mail under every suffix are there
  (`orange` is not: orange.com is a company's; orange.fr is listed).
A curated list, not a feed: a domain it misses matches as a company's until it is added here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache

# Webmail providers whose label is free mail under any public suffix (hotmail.com.au,
# yahoo.co.jp, gmx.at): the pattern rule of `FreeMail`.
FREE_MAIL_PROVIDERS = frozenset(
    {
        "aol",
        "gmail",
        "googlemail",
        "gmx",
        "hotmail",
        "live",
        "msn",
        "outlook",
        "protonmail",
        "rocketmail",
        "tutanota",
        "windowslive",
        "yahoo",
        "yandex",
        "ymail",
    }
)
# com, net, a country code, or a second level under one (com.au, co.uk, co.jp, ne.jp).
_PUBLIC_SUFFIX = re.compile(r"(?:com|net|[a-z]{2}|(?:co|com|net|ne|or|org)\.[a-z]{2})")


class FreeMail(frozenset[str]):
    """Personal mailboxes: `domain in FREE_MAIL` holds for a listed domain and for a provider
    of `FREE_MAIL_PROVIDERS` under a public suffix (the module's docstring)."""

    def __contains__(self, domain: object) -> bool:
        if not isinstance(domain, str):
            return False
        if frozenset.__contains__(self, domain):
            return True
        label, _, suffix = domain.partition(".")
        return label in FREE_MAIL_PROVIDERS and _PUBLIC_SUFFIX.fullmatch(suffix) is not None


FREE_MAIL = FreeMail(
    {
        # Webmail, beyond the providers' pattern above.
        "126.com",
        "139.com",
        "163.com",
        "aim.com",
        "aliyun.com",
        "bk.ru",
        "daum.net",
        "duck.com",
        "email.com",
        "fastmail.com",
        "fastmail.fm",
        "foxmail.com",
        "hanmail.net",
        "hey.com",
        "hushmail.com",
        "icloud.com",
        "inbox.com",
        "inbox.ru",
        "list.ru",
        "mac.com",
        "mail.com",
        "mail.ru",
        "mailbox.org",
        "mailfence.com",
        "me.com",
        "nate.com",
        "naver.com",
        "pm.me",
        "posteo.de",
        "posteo.net",
        "proton.me",
        "qq.com",
        "rambler.ru",
        "rediffmail.com",
        "runbox.com",
        "sina.cn",
        "sina.com",
        "sohu.com",
        "startmail.com",
        "tuta.com",
        "tuta.io",
        "usa.com",
        "web.de",
        "yandex.ru",
        "yeah.net",
        "zoho.com",
        "zohomail.com",
        # Internet providers' mailboxes: Australia and New Zealand,
        "aapt.net.au",
        "adam.com.au",
        "bigpond.com",
        "bigpond.com.au",
        "bigpond.net.au",
        "dodo.com.au",
        "iinet.net.au",
        "internode.on.net",
        "optusnet.com.au",
        "ozemail.com.au",
        "tpg.com.au",
        "westnet.com.au",
        "xtra.co.nz",
        # the UK and Ireland,
        "blueyonder.co.uk",
        "btinternet.com",
        "btopenworld.com",
        "eircom.net",
        "ntlworld.com",
        "sky.com",
        "talktalk.net",
        "tiscali.co.uk",
        "virginmedia.com",
        # North America,
        "att.net",
        "bellsouth.net",
        "centurylink.net",
        "charter.net",
        "comcast.net",
        "cox.net",
        "earthlink.net",
        "frontier.com",
        "juno.com",
        "netzero.net",
        "optonline.net",
        "roadrunner.com",
        "rogers.com",
        "sbcglobal.net",
        "shaw.ca",
        "sympatico.ca",
        "telus.net",
        "verizon.net",
        "videotron.ca",
        "windstream.net",
        # Europe,
        "alice.it",
        "arcor.de",
        "bluewin.ch",
        "free.fr",
        "freenet.de",
        "home.nl",
        "interia.pl",
        "kpnmail.nl",
        "laposte.net",
        "libero.it",
        "neuf.fr",
        "o2.pl",
        "onet.pl",
        "orange.fr",
        "planet.nl",
        "seznam.cz",
        "sfr.fr",
        "t-online.de",
        "telefonica.net",
        "telenet.be",
        "tin.it",
        "tiscali.it",
        "ukr.net",
        "virgilio.it",
        "wanadoo.fr",
        "wp.pl",
        "ziggo.nl",
        # and Asia and South America.
        "bol.com.br",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "ig.com.br",
        "softbank.ne.jp",
        "terra.com.br",
        "uol.com.br",
    }
)
# Second-level labels under a country code (example.co.uk, example.com.au): the registrable
# domain keeps three labels there. A heuristic, not the public suffix list; documented.
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go"})
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


@dataclass(frozen=True)
class NamedAccount:
    owner: str
    line: int  # in the CSV


def normalise_domain(value: str | None, *, subdomains: bool = False) -> str | None:
    """`value` (a domain, a URL or an email address) as a lower-case domain without `www.`,
    or None if it is not one. With `subdomains`, the registrable domain (eu.acme.com →
    acme.com). Free-mail domains come back as they are: `account_domain` drops them."""
    if not value:
        return None
    text = value.strip().lower()
    text = text.rsplit("@", 1)[-1]
    text = _SCHEME.sub("", text)
    text = text.split("/", 1)[0].split(":", 1)[0].strip(".")
    text = text.removeprefix("www.")
    labels = text.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    if subdomains and len(labels) > 2:
        keep = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
        labels = labels[-keep:]
    return ".".join(labels)


@lru_cache(maxsize=4096)  # routing asks it twice a lead (the named account, the lead's row)
def account_domain(
    company_domain: str | None, email: str | None, *, subdomains: bool = False
) -> str | None:
    """The lead's account: its company's domain, else its email's; None for free mail or none."""
    domain = normalise_domain(company_domain, subdomains=subdomains)
    if domain is None:
        domain = normalise_domain(email, subdomains=subdomains)
    if domain is None or domain in FREE_MAIL:
        return None
    return domain


def parse_named_accounts(text: str) -> tuple[dict[str, NamedAccount], list[tuple[int, str]]]:
    """The CSV `domain,owner` (a header line is optional) as {domain: its line}, and its
    problems as (line, problem): a bad domain, a missing owner, a domain listed twice."""
    accounts: dict[str, NamedAccount] = {}
    problems: list[tuple[int, str]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and cells[0].lower() == "domain":
            continue
        if len(cells) < 2 or not cells[1]:
            problems.append((number, "write `domain,owner` (the owner's Slack user id)"))
            continue
        domain = normalise_domain(cells[0])
        if domain is None:
            problems.append((number, f"{cells[0]!r} is not a domain (like northwind.example)"))
            continue
        if domain in accounts:
            listed = f"{domain} is listed already on line {accounts[domain].line}"
            problems.append((number, f"{listed}; a domain has one owner"))
            continue
        accounts[domain] = NamedAccount(cells[1], number)
    return accounts, problems
