"""Local fakes of the CRMs' APIs, held to their documented contracts: import nothing of ours."""
