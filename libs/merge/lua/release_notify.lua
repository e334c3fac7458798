-- merge_release_notify: releases a customer's merge lock when `lock` holds it and wakes its
-- watchers (the target, when a merge or an unmerge finishes).
--
-- KEYS:
--   profile          the customer's profile hash
--   notify_channel   the customer's notify channel
-- ARGV:
--   lock             the merge id
--   message          what is published ('merged' or 'unmerged')
-- Returns: 1.
-- Errors: none of its own.
if redis.call('HGET', K.profile, 'merge_lock') == P.lock then
  redis.call('HDEL', K.profile, 'merge_lock')
end
redis.call('SPUBLISH', K.notify_channel, P.message)
return 1
