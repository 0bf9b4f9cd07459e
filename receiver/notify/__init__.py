"""Telling people: messages for incident events, three channels behind one
interface, durable delivery through rq with retries and rate limits, and
escalation when nobody acknowledges."""
