"""Accounts: a company's domain, normalised, so two leads of one company find each other, and
the named-accounts CSV (`domain,owner`) read line by line with its problems named by line."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache

# Personal mailboxes: a lead from gmail.com is not an account, and never matches another lead.
FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.com.au",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "bigpond.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
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
