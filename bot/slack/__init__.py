"""Slack: Block Kit rendering (one place, one `escape()`) and the publisher that calls Slack."""
