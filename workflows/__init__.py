"""Journeys: deterministic orchestration only. Every side effect is an activity."""
