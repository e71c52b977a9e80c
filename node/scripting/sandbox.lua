-- Shoal's Lua sandbox: builds the globals a Redis 7.0 script sees, in a stock Lua 5.1.
--
-- Redis patches its Lua with read-only tables; stock Lua has none, so every
-- table a script can reach that Redis makes read-only (the globals, string,
-- math, table, redis, cjson...) is reached through an empty proxy whose
-- metatable reads from the real table and refuses writes. The few base
-- functions that bypass metatables (rawset, rawget, setmetatable,
-- getmetatable, next, pairs, table.insert) are wrapped to see through the
-- proxies, with the argument errors of the originals. Runs once per Lua state;
-- returns the internal entry points. Nothing here is reachable from scripts.
local PY, MODE = ...
local dbg = debug
local getinfo, sethook = dbg.getinfo, dbg.sethook
local type, error, tostring, tonumber, select, unpack = type, error, tostring, tonumber, select, unpack
local rawget, rawset, next, pairs, ipairs = rawget, rawset, next, pairs, ipairs
local setmetatable, getmetatable = setmetatable, getmetatable
local pcall, xpcall, loadstring, load, setfenv = pcall, xpcall, loadstring, load, setfenv
local sformat, ssub, sfind, sgsub, sbyte = string.format, string.sub, string.find, string.gsub, string.byte
local tconcat, tinsert = table.concat, table.insert
local floor = math.floor
local READONLY = 'Attempt to modify a readonly table'
local INTERNAL = '=shoal_sandbox'

local ENV         -- the globals scripts see (a proxy), set below
local PROT = {}    -- proxy -> real table
local MTVIEW = {}  -- proxy -> what getmetatable(proxy) answers

local function ro_newindex() error(READONLY, 2) end

local function protect(real)
  local proxy = setmetatable({}, {__index = real, __newindex = ro_newindex})
  PROT[proxy] = real
  return proxy
end

local function nonexistent(t, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

local function typename(n, ...)
  if select('#', ...) < n then return 'no value' end
  return type((select(n, ...)))
end

-- level 3: argerror (1) <- the wrapper (2) <- the script (3); 4 through checktable/checkany.
local function argerror(n, fname, msg, level)
  error(sformat("bad argument #%d to '%s' (%s)", n, fname, msg), level or 3)
end

local function checktable(n, fname, ...)
  if type((select(n, ...))) ~= 'table' then
    argerror(n, fname, 'table expected, got ' .. typename(n, ...), 4)
  end
end

local function checkany(n, fname, ...)
  if select('#', ...) < n then argerror(n, fname, 'value expected', 4) end
end

-- ------------------------------------------------------------ base library

local B = {}
for _, name in ipairs{'assert', 'collectgarbage', 'error', 'gcinfo', 'ipairs', 'rawequal',
                      'select', 'tonumber', 'tostring', 'type', 'unpack', 'xpcall'} do
  B[name] = _G[name]
end
B._VERSION = _VERSION

function B.rawset(...)
  checktable(1, 'rawset', ...)
  checkany(2, 'rawset', ...)
  checkany(3, 'rawset', ...)
  local t, k, v = ...
  if PROT[t] then error(READONLY, 0) end
  return rawset(t, k, v)
end

function B.rawget(...)
  checktable(1, 'rawget', ...)
  checkany(2, 'rawget', ...)
  local t, k = ...
  return rawget(PROT[t] or t, k)
end

function B.setmetatable(...)
  local t, mt = ...
  local mtt = type(mt)
  checktable(1, 'setmetatable', ...)
  if mtt ~= 'nil' and mtt ~= 'table' then argerror(2, 'setmetatable', 'nil or table expected') end
  if PROT[t] then error(READONLY, 0) end
  local old = dbg.getmetatable(t)
  if old ~= nil and rawget(old, '__metatable') ~= nil then
    error('cannot change a protected metatable', 2)
  end
  return setmetatable(t, mt)
end

local STRING_MT_VIEW  -- set below
function B.getmetatable(...)
  checkany(1, 'getmetatable', ...)
  local o = ...
  if PROT[o] then return MTVIEW[o] end
  if type(o) == 'string' then return STRING_MT_VIEW end
  return getmetatable(o)
end

local function snext(...)
  checktable(1, 'next', ...)
  local t, k = ...
  return next(PROT[t] or t, k)
end
B.next = snext

function B.pairs(...)
  checktable(1, 'pairs', ...)
  local t = ...
  if PROT[t] then return snext, t, nil end
  return next, t, nil
end

-- Redis's pcall hands back the message of an error table ({err=...}), not the table.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
function B.pcall(...)
  if select('#', ...) == 0 then return false end
  return pcall_result(pcall(...))
end

-- Precompiled (binary) chunks could break the VM: refuse them, as Redis does.
local function is_binary(s) return sbyte(s, 1) == 27 end
local sdump, py_untail = string.dump, PY.untail
-- Compile source text for a script: tail calls become plain calls (see bytecode.py), env = ENV.
local function compile(s, name)
  local fn, err = loadstring(s, name)
  if not fn then return nil, err end
  fn = loadstring(py_untail(sdump(fn)), name)
  setfenv(fn, ENV)
  return fn
end
function B.loadstring(...)
  local s, name = ...
  if type(s) ~= 'string' and type(s) ~= 'number' then
    argerror(1, 'loadstring', 'string expected, got ' .. typename(1, ...))
  end
  s = tostring(s)
  if is_binary(s) then return nil, 'binary chunks are not allowed' end
  if name == nil then name = s end
  return compile(s, name)
end
function B.load(...)
  local reader, name = ...
  if type(reader) ~= 'function' then
    argerror(1, 'load', 'function expected, got ' .. typename(1, ...))
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  local s = tconcat(parts)
  if is_binary(s) then return nil, 'binary chunks are not allowed' end
  return compile(s, name or '=(load)')
end

-- ------------------------------------------------------------ libraries

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local string_real = copy(string)
local string_proxy = protect(string_real)
local string_mt = getmetatable('')
string_mt.__index = string_proxy
STRING_MT_VIEW = protect(string_mt)

local table_real = copy(table)
function table_real.insert(...)
  local n = select('#', ...)
  checktable(1, 'insert', ...)
  if n ~= 2 and n ~= 3 then error("wrong number of arguments to 'insert'", 2) end
  if PROT[(...)] then error(READONLY, 0) end
  return tinsert(...)
end

local math_real = copy(math)
local function toint(v, n, fname)
  local x = tonumber(v)
  if x == nil then argerror(n, fname, 'number expected, got ' .. (v == nil and 'no value' or type(v)), 4) end
  x = x >= 0 and floor(x) or -floor(-x)
  x = x % 4294967296
  if x >= 2147483648 then x = x - 4294967296 end
  return x
end
local py_rand, py_srand = PY.rand, PY.srand
function math_real.random(...)
  local n = select('#', ...)
  local r = py_rand()
  if n == 0 then return r end
  if n == 1 then
    local u = toint((...), 1, 'random')
    if not (1 <= u) then argerror(1, 'random', 'interval is empty') end
    return floor(r * u) + 1
  end
  if n == 2 then
    local l, u = ...
    l = toint(l, 1, 'random')
    u = toint(u, 2, 'random')
    if not (l <= u) then argerror(2, 'random', 'interval is empty') end
    return floor(r * (u - l + 1)) + l
  end
  error('wrong number of arguments', 2)
end
function math_real.randomseed(...)
  local s = toint((...), 1, 'randomseed')
  py_srand(s)
end

local coroutine_real = copy(coroutine)

-- Python-backed library functions answer (true, values...) or (false,
-- message); the message is raised at the caller's position, as luaL_error does.
local function packn(...) return {n = select('#', ...), ...} end
local function pywrap(fn)
  return function(...)
    local r = packn(fn(...))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 2)
  end
end

local function pylib(spec)
  local real = {}
  for name, value in pairs(spec) do
    if type(value) == 'userdata' or type(value) == 'function' then
      real[name] = pywrap(value)
    else
      real[name] = value
    end
  end
  return real
end

-- cjson.encode in Lua (lua-cjson 2.1.0's rules): the key order is the
-- table's own iteration order, exactly as Redis's C encoder walks it.
local NULL = newproxy(false)
PY.set_null(NULL)
local JSON_ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
for i = 0, 31 do
  local c = string.char(i)
  if not JSON_ESC[c] then JSON_ESC[c] = sformat('\\u%04x', i) end
end
local function json_string(s) return '"' .. sgsub(s, '[%z\1-\31"\\/]', JSON_ESC) .. '"' end
local HUGE = math.huge
local function json_fail(kind, reason) error('Cannot serialise ' .. kind .. ': ' .. reason, 0) end
local function json_array_length(t)
  local max, items = 0, 0
  for k in next, t do
    if type(k) == 'number' and k == floor(k) and k >= 1 then
      if k > max then max = k end
      items = items + 1
    else
      return -1
    end
  end
  if max > 10 and max > items * 2 then json_fail('table', 'excessively sparse array') end
  return max
end
local json_encode
json_encode = function(v, depth, out)
  local t = type(v)
  if t == 'string' then
    out[#out + 1] = json_string(v)
  elseif t == 'number' then
    if v ~= v or v == HUGE or v == -HUGE then json_fail('number', 'must not be NaN or Inf') end
    out[#out + 1] = sformat('%.14g', v)
  elseif t == 'boolean' then
    out[#out + 1] = v and 'true' or 'false'
  elseif t == 'nil' or v == NULL then
    out[#out + 1] = 'null'
  elseif t == 'table' then
    depth = depth + 1
    if depth > 1000 then error(sformat('Cannot serialise, excessive nesting (%d)', depth), 0) end
    local len = json_array_length(v)
    if len > 0 then
      out[#out + 1] = '['
      for i = 1, len do
        if i > 1 then out[#out + 1] = ',' end
        json_encode(rawget(v, i), depth, out)
      end
      out[#out + 1] = ']'
    else
      out[#out + 1] = '{'
      local first = true
      for k, item in next, v do
        if not first then out[#out + 1] = ',' end
        first = false
        local kt = type(k)
        if kt == 'string' then
          out[#out + 1] = json_string(k)
        elseif kt == 'number' then
          if k ~= k or k == HUGE or k == -HUGE then json_fail('number', 'must not be NaN or Inf') end
          out[#out + 1] = '"' .. sformat('%.14g', k) .. '"'
        else
          json_fail('table', 'table key must be a number or string')
        end
        out[#out + 1] = ':'
        json_encode(item, depth, out)
      end
      out[#out + 1] = '}'
    end
  else
    json_fail(t, 'type not supported')
  end
end
local function cjson_encode(...)
  if select('#', ...) ~= 1 then argerror(1, 'encode', 'expected 1 argument') end
  local out = {}
  local ok, err = pcall(json_encode, (...), 0, out)
  if not ok then error(err, 2) end
  return tconcat(out)
end
local function cjson_setting(default)
  return function() return default end
end

local bit_real = pylib(PY.bit)
local cjson_real = pylib(PY.cjson)
cjson_real.null = NULL
cjson_real.encode = cjson_encode
cjson_real._NAME, cjson_real._VERSION = 'cjson', '2.1.0'
cjson_real.encode_keep_buffer = cjson_setting(true)
cjson_real.encode_max_depth = cjson_setting(1000)
cjson_real.decode_max_depth = cjson_setting(1000)
cjson_real.encode_number_precision = cjson_setting(14)
cjson_real.encode_invalid_numbers = cjson_setting(false)
cjson_real.decode_invalid_numbers = cjson_setting(true)
cjson_real.encode_sparse_array = function() return false, 2, 10 end
cjson_real.new = function() return protect(cjson_real) end
local struct_real = pylib(PY.struct)
local cmsgpack_real = pylib(PY.cmsgpack)

-- ------------------------------------------------------------ error handler

local function errh(err)
  local lvl = 2
  local i = getinfo(lvl, 'Sl')
  if i and i.what == 'C' then lvl = lvl + 1; i = getinfo(lvl, 'Sl') end
  while i and i.source == INTERNAL do lvl = lvl + 1; i = getinfo(lvl, 'Sl') end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then
    err.source = i.source
    err.line = i.currentline
  end
  return err
end

-- ------------------------------------------------------------ redis.*

-- Redis's luaPushErrorBuff: '-CODE msg' or 'msg' -> {err='CODE msg'}.
local function trim_crlf(s)
  return (sgsub(sgsub(s, '^[\r\n]+', ''), '[\r\n]+$', ''))
end
local function error_table(buf)
  local code, msg = 'ERR', buf
  if ssub(buf, 1, 1) == '-' then
    local sp = sfind(buf, ' ', 1, true)
    if sp then code, msg = ssub(buf, 2, sp - 1), ssub(buf, sp + 1) else msg = ssub(buf, 2) end
  end
  return {err = code .. ' ' .. trim_crlf(msg)}
end
local function raise(msg) error(error_table(msg)) end

local py_call = PY.call
local R = {}
function R.call(...)
  local reply, failed = py_call(...)
  if failed then error(reply) end
  return reply
end
function R.pcall(...)
  return (py_call(...))
end
function R.sha1hex(...)
  if select('#', ...) ~= 1 then raise('wrong number of arguments') end
  local s = ...
  if type(s) == 'number' then s = tostring(s) elseif type(s) ~= 'string' then s = '' end
  return PY.sha1hex(s)
end
function R.error_reply(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then return error_table('wrong number or type of arguments') end
  if ssub(e, 1, 1) ~= '-' then e = '-' .. e end
  return error_table(e)
end
function R.status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return error_table('wrong number or type of arguments') end
  return {ok = s}
end
local py_log = PY.log
function R.log(...)
  local argc = select('#', ...)
  if argc < 2 then raise('redis.log() requires two arguments or more.') end
  local level = tonumber((...))
  if level == nil then raise('First argument must be a number (log level).') end
  level = level >= 0 and floor(level) or -floor(-level)
  if level < 0 or level > 3 then raise('Invalid debug level.') end
  local parts = {}
  for j = 2, argc do
    local v = select(j, ...)
    local t = type(v)
    if t == 'string' or t == 'number' then
      if j ~= 2 then parts[#parts + 1] = ' ' end
      parts[#parts + 1] = tostring(v)
    end
  end
  py_log(level, tconcat(parts))
end
R.LOG_DEBUG, R.LOG_VERBOSE, R.LOG_NOTICE, R.LOG_WARNING = 0, 1, 2, 3
R.REDIS_VERSION = PY.version
R.REDIS_VERSION_NUM = PY.version_num
local SCRIPT_RESP3 = false
function R.setresp(...)
  if select('#', ...) ~= 1 then raise('redis.setresp() requires one argument.') end
  local n = tonumber((...)) or 0
  n = n >= 0 and floor(n) or -floor(-n)
  if n ~= 2 and n ~= 3 then raise('RESP version must be 2 or 3.') end
  SCRIPT_RESP3 = (n == 3)
  PY.setresp(n)
end
function R.set_repl(...)
  if select('#', ...) ~= 1 then raise('redis.set_repl() requires two arguments.') end
  local n = tonumber((...)) or 0
  n = n >= 0 and floor(n) or -floor(-n)
  if n ~= 0 and n ~= 1 and n ~= 2 and n ~= 3 then
    raise('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end
R.REPL_NONE, R.REPL_AOF, R.REPL_SLAVE, R.REPL_REPLICA, R.REPL_ALL = 0, 1, 2, 2, 3
function R.acl_check_cmd(...)
  local ok, failed = PY.acl_check(...)
  if failed then error(ok) end
  return ok
end

-- ------------------------------------------------------------ globals

local function with_libs(G)
  G.string = string_proxy
  G.table = protect(table_real)
  G.math = protect(math_real)
  G.coroutine = protect(coroutine_real)
  G.bit = protect(bit_real)
  G.cjson = protect(cjson_real)
  G.struct = protect(struct_real)
  G.cmsgpack = protect(cmsgpack_real)
  return G
end

local G = copy(B)
with_libs(G)
ENV = protect(G)
G._G = ENV
MTVIEW[ENV] = protect({__index = nonexistent})
setmetatable(G, {__index = nonexistent})

local ENV_MT = getmetatable(ENV)
local LIB_API  -- FUNCTION LOAD's globals: only redis.register_function and friends
local REGISTER = {}  -- filled while a library loads

if MODE == 'eval' then
  R.breakpoint = function() return false end
  R.debug = function() end
  R.replicate_commands = function() return true end
  G.__redis__err__handler = errh
  G.redis = protect(R)
else
  G.redis = protect(R)
  local LR = {}
  local function named_args(t)
    local name, desc, cb, flags
    for k, v in next, t do
      if type(k) ~= 'string' and type(k) ~= 'number' then
        raise('named argument key given to redis.register_function is not a string')
      end
      local key = string.lower(tostring(k))
      if key == 'function_name' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          raise('function_name argument given to redis.register_function must be a string')
        end
        name = tostring(v)
      elseif key == 'description' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          raise('description argument given to redis.register_function must be a string')
        end
        desc = tostring(v)
      elseif key == 'callback' then
        if type(v) ~= 'function' then
          raise('callback argument given to redis.register_function must be a function')
        end
        cb = v
      elseif key == 'flags' then
        if type(v) ~= 'table' then
          raise('flags argument to redis.register_function must be a table representing function flags')
        end
        flags = {}
        local j = 1
        while true do
          local f = v[j]
          if f == nil then break end
          if type(f) ~= 'string' and type(f) ~= 'number' then raise('unknown flag given') end
          flags[#flags + 1] = tostring(f)
          j = j + 1
        end
      else
        raise('unknown argument given to redis.register_function')
      end
    end
    if name == nil then raise('redis.register_function must get a function name argument') end
    if cb == nil then raise('redis.register_function must get a callback argument') end
    return name, desc, cb, flags or {}
  end
  function LR.register_function(...)
    local argc = select('#', ...)
    if argc < 1 or argc > 2 then raise('wrong number of arguments to redis.register_function') end
    local name, desc, cb, flags
    if argc == 1 then
      local t = ...
      if type(t) ~= 'table' then
        raise('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
      end
      name, desc, cb, flags = named_args(t)
    else
      local n, f = ...
      if type(n) ~= 'string' and type(n) ~= 'number' then
        raise('first argument to redis.register_function must be a string')
      end
      if type(f) ~= 'function' then raise('second argument to redis.register_function must be a function') end
      name, cb, flags = tostring(n), f, {}
    end
    local err = PY.register(name, desc, cb, unpack(flags))
    if err then raise(err) end
  end
  LR.log = R.log
  LR.LOG_DEBUG, LR.LOG_VERBOSE, LR.LOG_NOTICE, LR.LOG_WARNING = 0, 1, 2, 3
  LR.REDIS_VERSION, LR.REDIS_VERSION_NUM = R.REDIS_VERSION, R.REDIS_VERSION_NUM
  setmetatable(LR, {__index = nonexistent})
  local LG = {redis = protect(LR)}
  setmetatable(LG, {__index = nonexistent})
  LIB_API = LG
end

-- Any raw write a script slipped past the proxies (there should be none) is
-- undone after each run, so one script can never leave state for the next.
local function repair()
  for proxy in next, PROT do
    if next(proxy) ~= nil then
      for k in next, proxy do rawset(proxy, k, nil) end
    end
  end
end

-- ------------------------------------------------------------ replies

-- Redis's luaReplyToRedisReply, producing RESP text. resp3c: the caller speaks RESP3.
local LLONG_MIN = '-9223372036854775808'
local function lltoa(n)
  if n ~= n or n >= 9223372036854775808 or n < -9223372036854775808 then return LLONG_MIN end
  return sformat('%d', n)
end
local function mapchars(s) return (sgsub(s, '[\r\n]', ' ')) end
local function fmt_double(d) return sformat('%.17g', d) end

local encode
local function encode_error(t, out, resp3c, errs)
  local msg = t.err
  local line = '-' .. tostring(msg)
  line = mapchars((sgsub(line, '[\r\n]+$', '')))
  out[#out + 1] = line .. '\r\n'
  if errs and not (type(t.ignore_error_stats_update) == 'boolean' and t.ignore_error_stats_update) then
    errs[#errs + 1] = ssub(line, 2)
  end
end

encode = function(v, out, resp3c, errs)
  local t = type(v)
  if t == 'string' then
    out[#out + 1] = '$' .. #v .. '\r\n'
    out[#out + 1] = v
    out[#out + 1] = '\r\n'
  elseif t == 'number' then
    out[#out + 1] = ':' .. lltoa(v) .. '\r\n'
  elseif t == 'boolean' then
    if not SCRIPT_RESP3 then
      if v then out[#out + 1] = ':1\r\n' else out[#out + 1] = resp3c and '_\r\n' or '$-1\r\n' end
    elseif resp3c then
      out[#out + 1] = v and '#t\r\n' or '#f\r\n'
    else
      out[#out + 1] = v and ':1\r\n' or ':0\r\n'
    end
  elseif t == 'table' then
    local f = rawget(v, 'err')
    if type(f) == 'string' then return encode_error(v, out, resp3c, errs) end
    f = rawget(v, 'ok')
    if type(f) == 'string' then out[#out + 1] = '+' .. mapchars(f) .. '\r\n'; return end
    f = rawget(v, 'double')
    if type(f) == 'number' then
      local d = fmt_double(f)
      if resp3c then out[#out + 1] = ',' .. d .. '\r\n' else out[#out + 1] = '$' .. #d .. '\r\n' .. d .. '\r\n' end
      return
    end
    f = rawget(v, 'big_number')
    if type(f) == 'string' then
      local b = mapchars(f)
      if resp3c then out[#out + 1] = '(' .. b .. '\r\n' else out[#out + 1] = '$' .. #b .. '\r\n' .. b .. '\r\n' end
      return
    end
    f = rawget(v, 'verbatim_string')
    if type(f) == 'table' then
      local fmt, s = rawget(f, 'format'), rawget(f, 'string')
      if type(fmt) == 'string' and type(s) == 'string' then
        if resp3c then
          local nul = sfind(fmt, '\0', 1, true)
          if nul then fmt = ssub(fmt, 1, nul - 1) end
          fmt = ssub(fmt .. '   ', 1, 3)
          out[#out + 1] = '=' .. (#s + 4) .. '\r\n' .. fmt .. ':' .. s .. '\r\n'
        else
          out[#out + 1] = '$' .. #s .. '\r\n' .. s .. '\r\n'
        end
        return
      end
    end
    f = rawget(v, 'map')
    if type(f) == 'table' then
      local head = #out + 1
      out[head] = ''
      local n = 0
      for k, item in next, f do
        encode(k, out, resp3c, errs)
        encode(item, out, resp3c, errs)
        n = n + 1
      end
      out[head] = resp3c and ('%' .. n .. '\r\n') or ('*' .. (2 * n) .. '\r\n')
      return
    end
    f = rawget(v, 'set')
    if type(f) == 'table' then
      local head = #out + 1
      out[head] = ''
      local n = 0
      for k in next, f do
        encode(k, out, resp3c, errs)
        n = n + 1
      end
      out[head] = (resp3c and '~' or '*') .. n .. '\r\n'
      return
    end
    local head = #out + 1
    out[head] = ''
    local j = 1
    while true do
      local item = rawget(v, j)
      if item == nil then break end
      encode(item, out, resp3c, errs)
      j = j + 1
    end
    out[head] = '*' .. (j - 1) .. '\r\n'
  else
    out[#out + 1] = resp3c and '_\r\n' or '$-1\r\n'
  end
end

-- ------------------------------------------------------------ running

local py_interrupt = PY.interrupt
local hook
hook = function()
  local where = getinfo(2, 'S')
  if where and where.source == INTERNAL then return end
  if py_interrupt() then
    -- From now on stop at every line, so a pcall in the script cannot swallow the kill.
    sethook(hook, 'l')
    error(error_table(PY.kill_message()))
  end
end

local function field(t, k)
  local ok, v = pcall(function() return t[k] end)
  if ok then return v end
end

-- After a call: ('R', resp, errs) on success, ('E', line, ignore, errs) for an
-- error reply, ('F', msg, source, line, ignore) when the script raised an
-- error, ('X', msg) for an error that is not a table.
local function finish_run(resp3c, ok, res)
  sethook()
  repair()
  if ok then
    local errs = {}
    if type(res) == 'table' and type(rawget(res, 'err')) == 'string' then
      local out = {}
      encode_error(res, out, resp3c, nil)
      local ig = res.ignore_error_stats_update
      return 'E', ssub(out[1], 2, -3), (type(ig) == 'boolean' and ig), errs
    end
    local out = {}
    encode(res, out, resp3c, errs)
    return 'R', tconcat(out), nil, errs
  end
  if type(res) ~= 'table' then
    local msg = 'execution failure'
    if type(res) == 'string' or type(res) == 'number' then msg = tostring(res) end
    return 'X', msg
  end
  local msg, source, line, ig = field(res, 'err'), field(res, 'source'), field(res, 'line'), field(res, 'ignore_error_stats_update')
  if type(msg) ~= 'string' and type(msg) ~= 'number' then msg = nil else msg = tostring(msg) end
  if type(source) ~= 'string' and type(source) ~= 'number' then source = nil else source = tostring(source) end
  if type(line) ~= 'string' and type(line) ~= 'number' then line = nil else line = tostring(line) end
  return 'F', msg, source, line, (type(ig) == 'boolean' and ig)
end

local I = {}
local KEYS_ARGV = MODE == 'eval'

function I.compile(code, chunkname)
  local fn, err = compile(code, chunkname)
  if not fn then return nil, err end
  return fn, false
end

function I.run(fn, keys, args, resp3c, use_hook)
  SCRIPT_RESP3 = false
  if use_hook then sethook(hook, '', 100000) end
  local ok, res
  if KEYS_ARGV then
    rawset(G, 'KEYS', keys)
    rawset(G, 'ARGV', args)
    ok, res = xpcall(fn, errh)
  else
    ok, res = xpcall(function() return fn(keys, args) end, errh)
  end
  return finish_run(resp3c, ok, res)
end

-- FUNCTION LOAD: run the library body with only the library API visible.
local load_hook
load_hook = function()
  local where = getinfo(2, 'S')
  if where and where.source == INTERNAL then return end
  if py_interrupt() then
    sethook(load_hook, 'l')
    error(error_table('FUNCTION LOAD timeout'))
  end
end
function I.load_library(fn)
  ENV_MT.__index = LIB_API
  sethook(load_hook, '', 100000)
  local ok, res = xpcall(fn, errh)
  sethook()
  ENV_MT.__index = G
  repair()
  if ok then return nil end
  if type(res) ~= 'table' then return tostring(res) end
  local msg = field(res, 'err')
  return tostring(msg)
end

return I
