"""Whether two cull-train state files (.state, safetensors) are the same training state:
equal but for the timings a run measures (elapsed seconds; img_s and after in the log).
Prints "same" or "differ"; a file that does not parse differs from everything."""
import hashlib
import json
import re
import struct
import sys


def norm(path):
    try:
        b = open(path, "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h, d = json.loads(b[8:8 + n]), b[8 + n:]
        out = hashlib.sha256()
        for k in sorted(h):
            v = json.dumps(h[k], sort_keys=True).encode()
            if k != "__metadata__":
                s, e = h[k]["data_offsets"]
                v = d[s:e]
                if len(v) != e - s:
                    return "truncated"
                if k == "state.float":            # [loss sum, elapsed seconds]
                    v = v[:8] + bytes(8) + v[16:]
                if k == "log":
                    v = re.sub(rb',"img_s"[^\n]*', b"", v)
            out.update(k.encode() + b"\0" + v)
        return out.hexdigest()
    except Exception as e:  # noqa: BLE001 (a torn file is an answer, not an error)
        return "unreadable %r" % (e,)


a, b = norm(sys.argv[1]), norm(sys.argv[2])
print("same" if a == b and not a.startswith(("truncated", "unreadable")) else "differ")
