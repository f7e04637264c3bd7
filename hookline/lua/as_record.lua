-- A piece: the record as HGETALL gives it (a flat list), as a table of its fields.
local function as_record(flat)
  local record = {}
  for i = 1, #flat, 2 do record[flat[i]] = flat[i + 1] end
  return record
end
