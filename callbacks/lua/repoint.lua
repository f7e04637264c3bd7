-- A piece: point the URL index away from a callback that no longer has ``url``:
-- at the newest other callback of the tenant with that URL, or nowhere.
local function repoint(urls, index, prefix, url, cb_id)
  if not url or redis.call('HGET', urls, url) ~= cb_id then return end
  for _, member in ipairs(redis.call('ZREVRANGEBYLEX', index, '+', '-')) do
    local other = string.match(member, ':(.*)$')
    if other ~= cb_id and redis.call('HGET', prefix .. 'cb:' .. other, 'url') == url then
      redis.call('HSET', urls, url, other)
      return
    end
  end
  redis.call('HDEL', urls, url)
end
