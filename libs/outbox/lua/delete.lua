-- outbox_delete: deletes entries of a customer's outbox once applied, and the outbox itself
-- when nothing is left in it (an empty stream still takes a few hundred bytes per customer).
--
-- KEYS:
--   outbox             the customer's outbox stream
-- ARGV:
--   ids...             the stream ids of the entries applied
-- Returns: the number of entries left.
-- Errors: none.
redis.call('XDEL', K.outbox, unpack(P.ids))
local left = redis.call('XLEN', K.outbox)
if left == 0 then redis.call('DEL', K.outbox) end
return left
