--! include clock
--! include deletion_queue
-- A text came in: everything the web tier needs before deciding, in one round trip.
-- "Is this MessageSid new?" (SET NX, so a retried webhook advances nothing), "where is this texter?"
-- (GET), and, for a new text, how many this sender has sent in the last ARGV[3] seconds (a sliding
-- window: a sorted set of arrival times, issue 19) and everyone together this minute (INCR, TTL set
-- with the first). With a member (ARGV[6]), the inbound text's deletion from Twilio is queued too, as
-- deletion_add.lua queues it (it is first due a minute on: after the text is answered).
-- KEYS: seen, conversation, sender's arrivals, everyone's counter for this minute, and to queue the
-- deletion: deletions due, deletions info, deletion kick.
-- ARGV: '1' to check the sid ('0' when there is none), the seen key's TTL, the sender window (s), the
-- global counter's TTL (s), now (seconds, with a fraction); the deletion's member ('' for none),
-- final_at, keep seconds, kick seconds, delay.
-- -> {fresh 1|0, conversation or '', '' (kept for the shape callers read), sender count, everyone's
--     count, deletion: -1 not queued | 0 queued | 1 queued and a drain should be published}
local fresh = 1
if ARGV[1] == '1' then
  fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) and 1 or 0
end
local sender, everyone = 0, 0
if fresh == 1 and KEYS[3] then
  local at = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at - tonumber(ARGV[3]))
  redis.call('ZADD', KEYS[3], at, KEYS[1] .. '@' .. ARGV[5])
  sender = redis.call('ZCARD', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  everyone = redis.call('INCR', KEYS[4])
  if redis.call('TTL', KEYS[4]) < 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
end
local deletion = -1
if KEYS[7] and ARGV[6] and ARGV[6] ~= '' then
  deletion = queue_deletion(KEYS[5], KEYS[6], KEYS[7], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
end
return {fresh, redis.call('GET', KEYS[2]) or '', '', sender, everyone, deletion}
