"""Pure rules of Handoff: no Slack, no SQL, no I/O, no wall clock."""
