"""The CRM port and its adapters: HubSpot, Salesforce and a signed outbound webhook."""
