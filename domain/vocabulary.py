"""The CRM's fixed word lists, with no imports: the store, the journeys and
the command line all read them here, and the command line can load this
module without loading the models."""

from __future__ import annotations

# How a rep reached a lead.
CONTACT_CHANNELS = ("phone", "email", "sms", "chat", "wechat", "visit", "meeting")
# What an advisor's post-course callback came to.
CALLBACK_OUTCOMES = ("renewal_intent", "no_interest", "unreachable")
# The roles a staff member can hold.
STAFF_ROLES = ("rep", "agent", "advisor", "supervisor", "manager", "finance")
