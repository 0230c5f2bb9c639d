"""Local fakes of the CRMs' APIs, for tests and `handoff demo`: they import nothing of ours.

Each fake holds to its CRM's published contract: `hubspot.HubSpotFake` validates every request
and every answer against HubSpot's own OpenAPI files (shipped in `specs/hubspot/`);
`salesforce.SalesforceFake` serves the REST paths and error shapes `simple-salesforce` uses.
"""
