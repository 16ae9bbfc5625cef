--! include clock
--! include deletion_queue
-- Queue a deletion from Twilio (deletion_queue.lua says how).
-- KEYS: due, info, kick. ARGV: member, final_at, keep seconds, kick seconds, delay.
-- -> 1: the caller should publish a drain (none was asked for yet).
return queue_deletion(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
