-- net001.lua: Wireshark dissector for the NET-001 protocol (proto/PROTOCOL.md)
--
-- Load it with `tshark -X lua_script:proto/wireshark/net001.lua ...` or copy it
-- into ~/.local/lib/wireshark/plugins/ (README.md, "Wireshark").
--
-- * Registered on TCP port 5000 (preference net001.port) and as a heuristic
--   dissector on TCP ("net001_tcp") that takes a stream whose data starts
--   with the magic DE AD BE EF and version 0x01.
-- * Frames split across TCP segments are reassembled and several frames in
--   one segment are all dissected (dissect_tcp_pdus).
-- * The CRC-32/ISO-HDLC trailer is verified (expert info on a mismatch).
-- * Bad input (garbage, a wrong magic or version, malformed payloads, frames
--   cut short by the capture) is flagged with expert info, never a Lua error.
--
-- Written for Wireshark 4.0 (Lua 5.2 with bit32); the CRC also works with
-- Wireshark's own `bit` library or Lua 5.3+ integer operators.

local net001 = Proto("net001", "NET-001 Protocol")

local HEADER_LEN = 8
local CRC_LEN = 4
local FRAME_START = { 0xDE, 0xAD, 0xBE, 0xEF, 0x01 } -- magic and version
local MAGIC = 0xDEADBEEF
local VERSION = 1
local DEFAULT_PORT = 5000

local TYPE_NAMES = {
    [0x01] = "PING",
    [0x02] = "PONG",
    [0x03] = "ECHO",
    [0x04] = "ECHO_REPLY",
    [0x05] = "BROADCAST",
    [0x06] = "AUTH",
    [0x07] = "AUTH_REPLY",
    [0x08] = "DATA",
    [0xFF] = "ERROR",
}

local ERROR_NAMES = {
    [1] = "BAD_MAGIC",
    [2] = "BAD_VERSION",
    [3] = "BAD_CRC",
    [4] = "UNSUPPORTED_TYPE",
    [5] = "BAD_PAYLOAD",
    [6] = "FRAME_TOO_LARGE",
    [7] = "AUTH_REQUIRED",
    [8] = "AUTH_FAILED",
    [9] = "RATE_LIMITED",
    [10] = "SERVER_FULL",
    [11] = "IDLE_TIMEOUT",
    [12] = "SLOW_CONSUMER",
    [13] = "SHUTTING_DOWN",
    [14] = "INTERNAL",
}

local AUTH_STATUS = { [0] = "failure", [1] = "success" }
-- the values Wireshark uses for its *.checksum.status fields
local CRC_STATUS = { [0] = "Bad", [1] = "Good", [2] = "Unverified" }
local CRC_BAD, CRC_GOOD, CRC_UNVERIFIED = 0, 1, 2

---------------------------------------------------------------------------
-- Fields

local f = net001.fields
f.magic = ProtoField.uint32("net001.magic", "Magic", base.HEX)
f.version = ProtoField.uint8("net001.version", "Version", base.DEC)
f.type = ProtoField.uint8("net001.type", "Type", base.HEX, TYPE_NAMES)
f.length = ProtoField.uint16("net001.length", "Length", base.DEC)
f.payload = ProtoField.bytes("net001.payload", "Payload")
f.crc = ProtoField.uint32("net001.crc", "CRC-32", base.HEX)
f.crc_computed = ProtoField.uint32("net001.crc.computed", "Computed CRC-32", base.HEX)
f.crc_status = ProtoField.uint8("net001.crc.status", "CRC-32 status", base.DEC, CRC_STATUS)
f.ping_ts = ProtoField.uint64("net001.ping.timestamp", "Timestamp", base.DEC)
f.pong_ts = ProtoField.uint64("net001.pong.timestamp", "Timestamp", base.DEC)
f.auth_user_len = ProtoField.uint8("net001.auth.user_len", "User length", base.DEC)
f.auth_user = ProtoField.string("net001.auth.user", "User", base.UNICODE)
f.auth_token = ProtoField.string("net001.auth.token", "Token", base.UNICODE)
f.reply_status = ProtoField.uint8("net001.auth_reply.status", "Status", base.DEC, AUTH_STATUS)
f.reply_session = ProtoField.bytes("net001.auth_reply.session", "Session id")
f.error_code = ProtoField.uint16("net001.error.code", "Code", base.DEC, ERROR_NAMES)
f.error_name = ProtoField.string("net001.error.name", "Name")
f.error_message = ProtoField.string("net001.error.message", "Message", base.UNICODE)
f.garbage = ProtoField.bytes("net001.garbage", "Bytes outside any frame")

---------------------------------------------------------------------------
-- Expert info

local e = {
    bad_crc = ProtoExpert.new("net001.crc.bad", "CRC-32 mismatch",
        expert.group.CHECKSUM, expert.severity.ERROR),
    bad_magic = ProtoExpert.new("net001.magic.bad", "Not a NET-001 frame (bad magic)",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_version = ProtoExpert.new("net001.version.bad", "Unsupported protocol version",
        expert.group.MALFORMED, expert.severity.ERROR),
    bad_payload = ProtoExpert.new("net001.payload.bad", "Payload does not fit its type",
        expert.group.MALFORMED, expert.severity.ERROR),
    unknown_type = ProtoExpert.new("net001.type.unknown", "Unknown message type",
        expert.group.PROTOCOL, expert.severity.WARN),
    truncated = ProtoExpert.new("net001.truncated", "Frame runs past the captured data",
        expert.group.MALFORMED, expert.severity.ERROR),
    error_frame = ProtoExpert.new("net001.error.frame", "ERROR frame",
        expert.group.RESPONSE_CODE, expert.severity.WARN),
    auth_failed = ProtoExpert.new("net001.auth_reply.failed", "Authentication failed",
        expert.group.RESPONSE_CODE, expert.severity.NOTE),
}
net001.experts = { e.bad_crc, e.bad_magic, e.bad_version, e.bad_payload,
    e.unknown_type, e.truncated, e.error_frame, e.auth_failed }

---------------------------------------------------------------------------
-- Preferences

net001.prefs.port = Pref.uint("TCP port", DEFAULT_PORT,
    "TCP port the NET-001 dissector is registered on (0: none, the heuristic only)")
net001.prefs.heuristic = Pref.bool("Find NET-001 on any TCP port", true,
    "Dissect TCP data that starts with the NET-001 magic and version on any port")
net001.prefs.check_crc = Pref.bool("Verify the CRC-32", true,
    "Compute the CRC-32 of each frame and flag a mismatch")
net001.prefs.reassemble = Pref.bool("Reassemble frames split across TCP segments", true,
    "Needs TCP's \"Allow subdissector to reassemble TCP streams\" too")

---------------------------------------------------------------------------
-- CRC-32/ISO-HDLC (zlib's crc32), table driven. Lua has no built-in CRC.

-- bit32 (Lua 5.2), else Wireshark's own `bit`, else Lua 5.3+ operators
-- (compiled at run time, so this file still loads under 5.2)
local bitops = bit32 or bit or load([[return {
    band = function(a, b) return a & b end,
    bxor = function(a, b) return a ~ b end,
    rshift = function(a, n) return (a & 0xFFFFFFFF) >> n end,
}]])()
local band, bxor, rshift = bitops.band, bitops.bxor, bitops.rshift

local CRC_TABLE = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if band(c, 1) ~= 0 then
            c = bxor(0xEDB88320, rshift(c, 1))
        else
            c = rshift(c, 1)
        end
    end
    CRC_TABLE[i] = c
end

local function crc32(s)
    local crc = 0xFFFFFFFF
    local byte = string.byte
    local n = #s
    local i = 1
    while i <= n do
        -- string.byte in slices: one call per 256 bytes, not per byte
        local j = math.min(i + 255, n)
        local bytes = { byte(s, i, j) }
        for k = 1, #bytes do
            crc = bxor(rshift(crc, 8), CRC_TABLE[band(bxor(crc, bytes[k]), 0xFF)])
        end
        i = j + 1
    end
    -- `bit` answers signed 32-bit numbers; bring them back to 0..2^32-1
    return bxor(crc, 0xFFFFFFFF) % 4294967296
end

assert(crc32("123456789") == 0xCBF43926, "net001.lua: CRC-32 self-check failed")

---------------------------------------------------------------------------
-- Helpers

-- How many of the bytes at offset match the magic and version (0..5), as
-- far as they are captured; all captured bytes match when this returns
-- min(captured, 5).
local function frame_prefix(tvb, offset)
    local n = math.min(tvb:len() - offset, #FRAME_START)
    for i = 0, n - 1 do
        if tvb(offset + i, 1):uint() ~= FRAME_START[i + 1] then
            return i
        end
    end
    return math.max(n, 0)
end

-- A whole magic and version at offset.
local function frame_starts_at(tvb, offset)
    return frame_prefix(tvb, offset) == #FRAME_START
end

-- What is captured at offset could be the start of a frame (at least one
-- byte, all matching).
local function may_start_frame(tvb, offset)
    local cap = tvb:len() - offset
    return cap > 0 and frame_prefix(tvb, offset) == math.min(cap, #FRAME_START)
end

-- TCP streams known to carry NET-001: stream number -> first frame number.
-- Later bytes on such a stream that do not start a frame are flagged as ours
-- rather than handed back to TCP.
local known_streams = {}
local tcp_stream_field = Field.new("tcp.stream")

local function current_stream()
    local all = { tcp_stream_field() }
    local last = all[#all]
    return last and last.value or nil
end

local function remember_stream(pinfo)
    local s = current_stream()
    if s ~= nil then
        local first = known_streams[s]
        if first == nil or pinfo.number < first then
            known_streams[s] = pinfo.number
        end
    end
end

local function stream_known(pinfo)
    local s = current_stream()
    local first = s ~= nil and known_streams[s] or nil
    return first ~= nil and pinfo.number > first
end

function net001.init()
    known_streams = {}
end

-- Printable ASCII preview of a payload for the Info column, or nil.
local function preview(range_or_nil, len)
    if len == 0 then
        return '""'
    end
    if range_or_nil == nil then
        return nil
    end
    local n = math.min(len, 32)
    local s = range_or_nil:raw(0, n)
    if s:find("[^\32-\126]") then
        return nil
    end
    if n < len then
        s = s .. "..."
    end
    return '"' .. s .. '"'
end

-- Text from the wire for the Info column: valid UTF-8 kept, control bytes,
-- backslashes and bytes that are not UTF-8 escaped (\n, \\, \xNN), at most
-- `max` characters.
local ESCAPES = { [9] = "\\t", [10] = "\\n", [13] = "\\r", [92] = "\\\\" }

local function info_text(raw, max)
    local out = {}
    local i, n, chars = 1, #raw, 0
    while i <= n do
        if chars >= max then
            out[#out + 1] = "..."
            break
        end
        local b = raw:byte(i)
        local len = 0
        if b >= 0xC2 and b <= 0xDF then
            len = 2
        elseif b >= 0xE0 and b <= 0xEF then
            len = 3
        elseif b >= 0xF0 and b <= 0xF4 then
            len = 4
        end
        local ok = len > 0 and i + len - 1 <= n
        for k = i + 1, i + len - 1 do
            local c = raw:byte(k) or 0
            if c < 0x80 or c > 0xBF then
                ok = false
            end
        end
        if ok then
            out[#out + 1] = raw:sub(i, i + len - 1)
            i = i + len
        else
            if ESCAPES[b] then
                out[#out + 1] = ESCAPES[b]
            elseif b < 0x20 or b >= 0x7F then
                out[#out + 1] = string.format("\\x%02x", b)
            else
                out[#out + 1] = string.char(b)
            end
            i = i + 1
        end
        chars = chars + 1
    end
    return table.concat(out)
end

-- Info column: the first frame of a packet sets it, later ones append.
local function add_info(pinfo, text)
    local ok, proto = pcall(tostring, pinfo.cols.protocol)
    if ok and proto == "NET001" then
        pinfo.cols.info:append(", " .. text)
    else
        pinfo.cols.protocol = "NET001"
        pinfo.cols.info = text
    end
end

local function type_name(t)
    return TYPE_NAMES[t] or string.format("type 0x%02x", t)
end

local function error_name(code)
    return ERROR_NAMES[code] or "unknown"
end

---------------------------------------------------------------------------
-- Payloads. Each gets the payload's TvbRange (nil when empty) and its length,
-- adds its fields to t and returns a summary for the Info column.

local function bad_payload(t, range, text)
    if range ~= nil then
        t:add_tvb_expert_info(e.bad_payload, range, text)
    else
        t:add_proto_expert_info(e.bad_payload, text)
    end
end

local function dissect_timestamp(field, name)
    return function(t, p, len)
        if len ~= 8 then
            bad_payload(t, p, string.format("%s payload is %d bytes, not 8", name, len))
            return string.format("%s len=%d", name, len)
        end
        t:add(field, p)
        return string.format("%s ts=%s", name, tostring(p:uint64()))
    end
end

local function dissect_bytes(name)
    return function(t, p, len)
        local s = string.format("%s len=%d", name, len)
        local text = preview(p, len)
        if text then
            s = s .. " " .. text
        end
        return s
    end
end

local function dissect_auth(t, p, len)
    if len < 1 then
        bad_payload(t, p, "AUTH payload is empty")
        return "AUTH (malformed)"
    end
    local ulen = p(0, 1):uint()
    t:add(f.auth_user_len, p(0, 1))
    if ulen < 1 or ulen > 64 then
        bad_payload(t, p(0, 1), string.format("AUTH user length %d is outside 1..64", ulen))
    end
    if 1 + ulen > len then
        bad_payload(t, p, string.format("AUTH user length %d runs past the %d-byte payload", ulen, len))
        return "AUTH (malformed)"
    end
    local user = ""
    if ulen > 0 then
        t:add_packet_field(f.auth_user, p(1, ulen), ENC_UTF_8)
        user = info_text(p(1, ulen):raw(), 64)
    end
    local tlen = len - 1 - ulen
    if tlen > 0 then
        t:add_packet_field(f.auth_token, p(1 + ulen, tlen), ENC_UTF_8)
    end
    if tlen < 1 or tlen > 256 then
        bad_payload(t, p, string.format("AUTH token length %d is outside 1..256", tlen))
        return "AUTH (malformed)"
    end
    if ulen < 1 or ulen > 64 then
        return "AUTH (malformed)"
    end
    return "AUTH user=" .. user
end

local function dissect_auth_reply(t, p, len)
    if len ~= 17 then
        bad_payload(t, p, string.format("AUTH_REPLY payload is %d bytes, not 17", len))
    end
    if len < 1 then
        return "AUTH_REPLY (malformed)"
    end
    local status = p(0, 1):uint()
    local item = t:add(f.reply_status, p(0, 1))
    if status == 0 then
        item:add_proto_expert_info(e.auth_failed)
    elseif status ~= 1 then
        bad_payload(t, p(0, 1), string.format("AUTH_REPLY status %d is neither 0 nor 1", status))
    end
    if len >= 17 then
        t:add(f.reply_session, p(1, 16))
    end
    if len ~= 17 then
        return "AUTH_REPLY (malformed)"
    end
    return "AUTH_REPLY " .. (AUTH_STATUS[status] or ("status " .. status))
end

local function dissect_error(t, p, len)
    if len < 2 then
        bad_payload(t, p, string.format("ERROR payload is %d bytes, shorter than its 2-byte code", len))
        return "ERROR (malformed)"
    end
    local code = p(0, 2):uint()
    local item = t:add(f.error_code, p(0, 2))
    local name = error_name(code)
    local gen = t:add(f.error_name, p(0, 2), name)
    gen:set_generated()
    local message = ""
    if len > 2 then
        t:add_packet_field(f.error_message, p(2, len - 2), ENC_UTF_8)
        message = info_text(p(2, len - 2):raw(), 64)
    else
        -- an empty message is allowed: show it as such
        t:add(f.error_message, p(0, 2), ""):set_generated()
    end
    item:add_proto_expert_info(e.error_frame, string.format("ERROR %d %s: %s", code, name, message))
    local s = string.format("ERROR %d %s", code, name)
    if message ~= "" then
        s = s .. ' "' .. message .. '"'
    end
    return s
end

local PAYLOAD_DISSECTORS = {
    [0x01] = dissect_timestamp(f.ping_ts, "PING"),
    [0x02] = dissect_timestamp(f.pong_ts, "PONG"),
    [0x03] = dissect_bytes("ECHO"),
    [0x04] = dissect_bytes("ECHO_REPLY"),
    [0x05] = dissect_bytes("BROADCAST"),
    [0x06] = dissect_auth,
    [0x07] = dissect_auth_reply,
    [0x08] = dissect_bytes("DATA"),
    [0xFF] = dissect_error,
}

---------------------------------------------------------------------------
-- One PDU

-- Bytes that do not start a frame: say so and skip to the next magic.
local function dissect_unframed(tvb, pinfo, tree)
    local cap = tvb:len()
    local t = tree:add(net001, tvb())
    local summary
    if cap >= 5 and tvb(0, 4):uint() == MAGIC then
        t:add(f.magic, tvb(0, 4))
        local v = tvb(4, 1):uint()
        t:add(f.version, tvb(4, 1))
        t:add_tvb_expert_info(e.bad_version, tvb(4, 1),
            string.format("Unsupported protocol version %d (expected %d)", v, VERSION))
        summary = string.format("Bad version %d (%d bytes)", v, tvb:reported_len())
    else
        t:add_tvb_expert_info(e.bad_magic, tvb(0, math.min(cap, 4)))
        summary = string.format("Bad magic (%d bytes)", tvb:reported_len())
    end
    t:add(f.garbage, tvb())
    t:append_text(", " .. summary)
    add_info(pinfo, summary)
    return tvb:reported_len()
end

local function dissect_frame(tvb, pinfo, tree)
    local cap = tvb:len()
    if cap == 0 then
        -- nothing of it captured at all
        tree:add_proto_expert_info(e.truncated, "Frame not captured")
        add_info(pinfo, "Truncated frame")
        return tvb:reported_len()
    end
    if cap < HEADER_LEN and may_start_frame(tvb, 0) then
        -- the start of a frame, and the capture (or the segment, without
        -- reassembly) ends inside its header
        local t = tree:add(net001, tvb())
        if cap >= 4 then
            t:add(f.magic, tvb(0, 4))
        end
        if cap >= 5 then
            t:add(f.version, tvb(4, 1))
        end
        if cap >= 6 then
            t:add(f.type, tvb(5, 1))
        end
        t:add_proto_expert_info(e.truncated,
            string.format("Frame header cut short: %d of 8 bytes captured", cap))
        t:append_text(", truncated header")
        add_info(pinfo, "Truncated frame")
        return tvb:reported_len()
    end
    if not frame_starts_at(tvb, 0) then
        return dissect_unframed(tvb, pinfo, tree)
    end
    remember_stream(pinfo)

    local t = tree:add(net001, tvb())
    t:add(f.magic, tvb(0, 4))
    t:add(f.version, tvb(4, 1))

    local ftype = tvb(5, 1):uint()
    local len = tvb(6, 2):uint()
    local type_item = t:add(f.type, tvb(5, 1))
    t:add(f.length, tvb(6, 2))
    local name = type_name(ftype)
    local frame_len = HEADER_LEN + len + CRC_LEN
    t:append_text(string.format(", %s, Len: %d", name, len))

    if cap < HEADER_LEN + len then
        t:add_proto_expert_info(e.truncated,
            string.format("%s frame cut short: %d of %d bytes captured", name, cap, frame_len))
        add_info(pinfo, name .. " (truncated)")
        return tvb:reported_len()
    end

    -- the payload's own fields go under its item
    local p = nil
    local pt = t
    if len > 0 then
        p = tvb(HEADER_LEN, len)
        pt = t:add(f.payload, p)
    end
    local summary
    local payload_dissector = PAYLOAD_DISSECTORS[ftype]
    if payload_dissector then
        summary = payload_dissector(pt, p, len)
    else
        type_item:add_proto_expert_info(e.unknown_type,
            string.format("Unknown message type 0x%02x", ftype))
        summary = string.format("%s len=%d", name, len)
    end

    if cap < frame_len then
        t:add_proto_expert_info(e.truncated,
            string.format("%s frame cut short: CRC-32 not captured (%d of %d bytes)", name, cap, frame_len))
        add_info(pinfo, summary .. " (truncated)")
        return tvb:reported_len()
    end

    local crc_range = tvb(HEADER_LEN + len, CRC_LEN)
    local crc = crc_range:uint()
    local crc_item = t:add(f.crc, crc_range)
    if net001.prefs.check_crc then
        local computed = crc32(tvb:raw(0, HEADER_LEN + len))
        t:add(f.crc_computed, crc_range, computed):set_generated()
        if computed == crc then
            crc_item:append_text(" [correct]")
            t:add(f.crc_status, crc_range, CRC_GOOD):set_generated()
        else
            crc_item:append_text(string.format(" [incorrect, should be 0x%08x]", computed))
            t:add(f.crc_status, crc_range, CRC_BAD):set_generated()
            crc_item:add_proto_expert_info(e.bad_crc,
                string.format("CRC-32 mismatch: frame says 0x%08x, computed 0x%08x", crc, computed))
            summary = summary .. " [bad CRC]"
        end
    else
        crc_item:append_text(" [unverified]")
        t:add(f.crc_status, crc_range, CRC_UNVERIFIED):set_generated()
    end

    add_info(pinfo, summary)
    return frame_len
end

-- Length of the PDU at offset, for dissect_tcp_pdus, which takes nothing
-- shorter than a header. Bytes that do not start a frame run to the next
-- magic and version at least 8 bytes on, or to the end of the data.
local MAGIC_AND_VERSION = "\222\173\190\239\1"

local function pdu_length(tvb, pinfo, offset)
    local cap = tvb:len() - offset
    local remaining = tvb:reported_length_remaining(offset)
    if cap >= HEADER_LEN and frame_starts_at(tvb, offset) then
        return HEADER_LEN + tvb(offset + 6, 2):uint() + CRC_LEN
    end
    if cap > HEADER_LEN then
        local next_start = tvb:raw(offset, cap):find(MAGIC_AND_VERSION, HEADER_LEN + 1, true)
        if next_start then
            return next_start - 1
        end
    end
    -- also a header cut short (no reassembly, or a short capture): the
    -- dissector flags it
    return math.max(remaining, HEADER_LEN)
end

---------------------------------------------------------------------------
-- Entry points

local function dissect_stream(tvb, pinfo, tree)
    if tvb:len() == 0 then
        return 0
    end
    -- Not a frame start (TLS on the port, say) and not a stream that carried
    -- frames before: leave it to others.
    if not may_start_frame(tvb, 0) and not stream_known(pinfo) then
        return 0
    end
    dissect_tcp_pdus(tvb, tree, HEADER_LEN, pdu_length, dissect_frame,
        net001.prefs.reassemble)
    return tvb:len()
end

net001.dissector = dissect_stream

local function heuristic(tvb, pinfo, tree)
    if not net001.prefs.heuristic then
        return false
    end
    if not frame_starts_at(tvb, 0) then
        return false
    end
    -- the rest of this TCP conversation comes straight to us
    pinfo.conversation = net001
    -- called as a function, not through net001.dissector (a handle whose
    -- call would take away TCP's permission to reassemble)
    dissect_stream(tvb, pinfo, tree)
    return true
end

local registered_port = 0
local function register_port(port)
    local tcp_port = DissectorTable.get("tcp.port")
    if registered_port ~= 0 then
        tcp_port:remove(registered_port, net001)
    end
    registered_port = 0
    if port > 0 and port <= 65535 then
        tcp_port:add(port, net001)
        registered_port = port
    end
end

function net001.prefs_changed()
    if net001.prefs.port ~= registered_port then
        register_port(net001.prefs.port)
    end
end

register_port(DEFAULT_PORT)
net001:register_heuristic("tcp", heuristic)
