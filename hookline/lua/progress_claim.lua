-- Take the right to attempt a task.progress webhook now.
-- KEYS: task
-- ARGV: event number, now (s), lease until (s)
-- Returns 1 when the attempt may go: the task runs, is neither stopping nor
-- ending, the event is its newest, and no other of its events is being
-- attempted. The lease (``pe_busy``) makes the task's terminal webhook wait
-- until the attempt is recorded (progress_attempt) or the lease runs out, so
-- a receiver never gets a progress event after the task's last event.
local s = redis.call('HMGET', KEYS[1], 'status', 'ending', 'cancel', 'pe_n', 'pe_busy')
if s[1] ~= 'STARTED' or s[2] or s[3] == '1' or s[4] ~= ARGV[1] then return 0 end
if s[5] and tonumber(s[5]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'pe_busy', ARGV[3])
return 1
