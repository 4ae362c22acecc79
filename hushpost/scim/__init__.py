"""Provisioning: an organisation's identity provider creates, updates and removes its senders (SCIM 2.0)."""
