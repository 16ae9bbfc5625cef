"""The Redis store: every key (keys.py) and Lua script (scripts/) the web tier and the workers share.

connection (clients), keys (the schema), conversations (texters: where in the menu, arrival counts),
limits (follow-ups and replies), pending (follow-ups waiting to be sent, sealed by sealing), deletions
(records to delete from Twilio), counters (the workers' aggregate counts), own_numbers (the helpline's
numbers). No module here imports the web tier, the flow engine or tasks.
"""
