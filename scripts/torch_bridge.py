#!/usr/bin/python3
"""torch_bridge: chord model files <-> PyTorch checkpoints of SASRec.pytorch and caser_pytorch.

  torch_bridge.py import --format sasrec-pytorch --variant legacy|norm-first|post-ln --state-dict F.pth
                         [--max-len L] [--heads H] [--dropout P] --out MODEL.safetensors
  torch_bridge.py import --format caser-pytorch --state-dict F.pth --out MODEL.safetensors
  torch_bridge.py export --model MODEL.safetensors --format sasrec-pytorch|caser-pytorch [--pos-rows R] --out F.pth

The name map and the graph variants are in docs/interop.md. The chord file is written here, by the
rules of include/chord/io/safetensors.hpp and include/chord/models/model_file.hpp (header, 8-byte
alignment, "chord.crc32" over the canonical form, tensors in the model's parameter order, metadata as
models/config.hpp spells it), so that the C++ writer and this one produce the same bytes for the same
model; tests/interop checks that (the C++ reader loads and re-saves every file written here) and reads
every chord file through the same checks. Anything that does not map is refused, naming the tensor.
Run with /usr/bin/python3 (Debian's python3-torch and python3-numpy).
"""
import argparse
import collections
import json
import os
import struct
import sys
import tempfile
import zlib

import numpy as np

CHECKSUM_KEY = "chord.crc32"
MAX_HEADER = 100 * 1000 * 1000
VARIANTS = ("legacy", "norm-first", "post-ln")


class BridgeError(Exception):
    pass


# --- safetensors, as include/chord/io/safetensors.hpp writes and checks it ------------------------------

def _crc_text(crc, text):
    raw = text.encode("utf-8")
    return zlib.crc32(raw, zlib.crc32(struct.pack("<Q", len(raw)), crc))


def canonical_crc(metadata, entries, data):
    """CRC-32 of: metadata (checksum key left out) sorted by key, entries sorted by name, then the data."""
    crc = 0
    for key in sorted(k for k in metadata if k != CHECKSUM_KEY):
        crc = _crc_text(_crc_text(crc, key), metadata[key])
    for name, shape, begin, end in sorted(entries):
        crc = _crc_text(_crc_text(crc, name), "F32")
        crc = zlib.crc32(struct.pack("<Q", len(shape)), crc)
        for dim in shape:
            crc = zlib.crc32(struct.pack("<Q", dim), crc)
        crc = zlib.crc32(struct.pack("<QQ", begin, end), crc)
    return zlib.crc32(data, crc)


def _json_string(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode_safetensors(metadata, tensors):
    """metadata: str -> str; tensors: [(name, float32 ndarray)] in data order -> the file's bytes."""
    entries, chunks, offset, seen = [], [], 0, set()
    for name, array in tensors:
        if not name or name == "__metadata__" or name in seen:
            raise BridgeError("tensor name '%s' is not allowed or appears twice" % name)
        seen.add(name)
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        entries.append((name, tuple(int(d) for d in array.shape), offset, offset + len(raw)))
        chunks.append(raw)
        offset += len(raw)
    data = b"".join(chunks)
    metadata = dict(metadata)
    metadata[CHECKSUM_KEY] = "%08x" % canonical_crc(metadata, entries, data)
    parts = ["{" + _json_string("__metadata__") + ":{"]
    parts.append(",".join(_json_string(k) + ":" + _json_string(metadata[k]) for k in sorted(metadata)))
    parts.append("}")
    for name, shape, begin, end in entries:
        parts.append("," + _json_string(name) + ':{"dtype":"F32","shape":[' + ",".join(str(d) for d in shape) +
                     '],"data_offsets":[%d,%d]}' % (begin, end))
    parts.append("}")
    header = "".join(parts).encode("utf-8")
    header += b" " * ((8 - (8 + len(header)) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def _unique_pairs(pairs):
    out = collections.OrderedDict()
    for k, v in pairs:
        if k in out:
            raise BridgeError("key '%s' appears twice in the header" % k)
        out[k] = v
    return out


def decode_safetensors(raw, source):
    """The file's (metadata, [(name, ndarray)] in data order), checked as the C++ reader checks it."""
    def fail(what):
        raise BridgeError("safetensors '%s': %s" % (source, what))
    if len(raw) < 8:
        fail("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        fail("header length %d does not fit the file (%d bytes)" % (n, len(raw)))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_unique_pairs)
    except (UnicodeDecodeError, ValueError) as e:
        fail("header is not valid JSON: %s" % e)
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail("__metadata__ is not a map of strings")
    data = raw[8 + n:]
    entries = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            fail("tensor '%s': entry must have exactly dtype, shape and data_offsets" % name)
        if e["dtype"] != "F32":
            fail("tensor '%s': dtype '%s' (only F32 is read)" % (name, e["dtype"]))
        shape, offsets = e["shape"], e["data_offsets"]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape + offsets) or \
                len(offsets) != 2:
            fail("tensor '%s': shape and data_offsets must be non-negative integers" % name)
        begin, end = offsets
        if begin > end or end > len(data) or end - begin != 4 * int(np.prod(shape, dtype=np.uint64)):
            fail("tensor '%s': data_offsets [%d, %d] do not match its shape or the data" % (name, begin, end))
        entries.append((name, tuple(shape), begin, end))
    at = 0
    for name, _, begin, end in sorted(entries, key=lambda e: e[2]):
        if begin != at:
            fail("tensor '%s' does not start where the previous one ends (the data must be covered once)" % name)
        at = end
    if at != len(data):
        fail("%d bytes of data belong to no tensor" % (len(data) - at))
    if CHECKSUM_KEY not in metadata:
        fail("metadata has no '%s'" % CHECKSUM_KEY)
    actual = "%08x" % canonical_crc(metadata, entries, data)
    if metadata[CHECKSUM_KEY] != actual:
        fail("checksum mismatch (stored %s, computed %s): the file is damaged" % (metadata[CHECKSUM_KEY], actual))
    tensors = [(name, np.frombuffer(data[b:e], dtype="<f4").reshape(shape).astype(np.float32))
               for name, shape, b, e in sorted(entries, key=lambda e: e[2])]
    return metadata, tensors


def write_atomic(path, raw):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- chord's model files (models/model_file.hpp, models/config.hpp) --------------------------------------

def float_text(v):
    """models/config.hpp's float_text, std::to_chars(float): the shortest digits that give the float32
    back, in fixed or scientific notation, whichever is shorter (fixed on a tie)."""
    x = np.float32(v)
    if x == 0:
        return "-0" if np.signbit(x) else "0"
    mantissa, exponent = np.format_float_scientific(abs(x), unique=True, trim="-").split("e")
    digits, e = mantissa.replace(".", ""), int(exponent)
    if e >= 0:
        # an integral value prints its exact digits in fixed notation (123456792, not 123456790)
        fixed = str(int(abs(x))) if e + 1 >= len(digits) else digits[:e + 1] + "." + digits[e + 1:]
    else:
        fixed = "0." + "0" * (-e - 1) + digits
    scientific = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + "e" + ("-" if e < 0 else "+") + "%02d" % abs(e)
    return ("-" if x < 0 else "") + (fixed if len(fixed) <= len(scientific) else scientific)


def sasrec_metadata(c):
    m = {"architecture": "sasrec", "sasrec.num_items": str(c["num_items"]), "sasrec.d": str(c["d"]),
         "sasrec.blocks": str(c["blocks"]), "sasrec.heads": str(c["heads"]), "sasrec.max_len": str(c["max_len"]),
         "sasrec.hidden": str(c["hidden"]), "sasrec.dropout": float_text(c["dropout"]),
         "sasrec.layernorm_eps": float_text(c["layernorm_eps"]), "sasrec.output_projection": "1"}
    if c["variant"] != "chord":
        m["sasrec.variant"] = c["variant"]
    return m


def caser_metadata(c):
    m = {"architecture": "caser"}
    for key in ("num_items", "num_users", "d", "L", "T", "nh", "nv", "negatives"):
        m["caser." + key] = str(c[key])
    m["caser.dropout"] = float_text(c["dropout"])
    m["caser.variant"] = "caser-pytorch"  # a short window's padding id 0 reads the learned item row 0
    return m


def sasrec_parameter_names(blocks):
    """SasrecModel's parameters in creation order (the data order of a chord file)."""
    names = ["item_emb.weight", "pos_emb.weight"]
    for b in range(blocks):
        p = "blocks.%d." % b
        names += [p + "ln_attn.weight", p + "ln_attn.bias"]
        for proj in ("q", "k", "v", "out"):
            names += [p + "attn.%s.weight" % proj, p + "attn.%s.bias" % proj]
        names += [p + "ln_ffn.weight", p + "ln_ffn.bias", p + "ffn.fc1.weight", p + "ffn.fc1.bias",
                  p + "ffn.fc2.weight", p + "ffn.fc2.bias"]
    return names + ["ln_final.weight", "ln_final.bias"]


def caser_parameter_names(L):
    names = ["item_emb.weight", "user_emb.weight", "conv_v.weight", "conv_v.bias"]
    for h in range(1, L + 1):
        names += ["conv_h.h%d.weight" % h, "conv_h.h%d.bias" % h]
    return names + ["fc1.weight", "fc1.bias", "out_emb.weight", "out_bias.weight"]


def write_chord_model(path, metadata, tensors, order):
    metadata = dict(metadata, format="chord-model", format_version="1")
    missing = [n for n in order if n not in tensors]
    if missing or len(tensors) != len(order):
        raise BridgeError("internal: chord tensors %s do not match the architecture" % missing)
    write_atomic(path, encode_safetensors(metadata, [(n, tensors[n]) for n in order]))


def read_chord_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    metadata, tensors = decode_safetensors(raw, path)
    where = "model '%s'" % path
    if metadata.get("format") != "chord-model" or metadata.get("format_version") != "1":
        raise BridgeError("%s: not a chord model of format version 1" % where)
    return metadata, collections.OrderedDict(tensors)


# --- PyTorch side -------------------------------------------------------------------------------------------

def load_state_dict(path, allow_pickle):
    import torch
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if not allow_pickle:
            raise BridgeError("'%s': not a plain state_dict (%s); a whole pickled model runs code when loaded: "
                              "pass --allow-pickle if you trust the file" % (path, str(e).splitlines()[0]))
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise BridgeError("'%s' holds a %s, not a state_dict" % (path, type(obj).__name__))
    out = collections.OrderedDict()
    for name, t in obj.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise BridgeError("'%s': entry '%s' is not a floating-point tensor" % (path, name))
        out[name] = t.detach().cpu().to(torch.float32).numpy().copy()
    return out


class StateDict:
    """Takes tensors out of a state_dict by name, checking shapes; leftovers are refused by finish()."""

    def __init__(self, tensors, source):
        self.tensors, self.source, self.used = tensors, source, set()

    def take(self, name, shape=None):
        if name not in self.tensors:
            raise BridgeError("'%s': tensor '%s' is missing" % (self.source, name))
        t = self.tensors[name]
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise BridgeError("'%s': tensor '%s' has shape %s, expected %s" % (self.source, name, list(t.shape),
                                                                             list(shape)))
        self.used.add(name)
        return t

    def finish(self):
        left = [n for n in self.tensors if n not in self.used]
        if left:
            raise BridgeError("'%s': tensor '%s' has no counterpart in chord's model (cannot be mapped)" %
                              (self.source, left[0]))


def _zero_row(sd, name, array):
    if np.any(array[0] != 0):
        raise BridgeError("'%s': tensor '%s' has a non-zero row 0, but id 0 is padding (padding_idx=0) in this "
                          "format" % (sd.source, name))


def sasrec_from_torch(sd, variant, max_len, heads, dropout):
    item = sd.take("item_emb.weight")
    if item.ndim != 2 or item.shape[0] < 2:
        raise BridgeError("'%s': tensor 'item_emb.weight' must be [items + 1, d]" % sd.source)
    d = item.shape[1]
    pos = sd.take("pos_emb.weight")
    if pos.ndim != 2 or pos.shape[1] != d or pos.shape[0] < 2:
        raise BridgeError("'%s': tensor 'pos_emb.weight' must be [max_len + 1, %d]" % (sd.source, d))
    _zero_row(sd, "item_emb.weight", item)
    _zero_row(sd, "pos_emb.weight", pos)
    L = max_len if max_len else pos.shape[0] - 1
    if L > pos.shape[0] - 1:
        raise BridgeError("'%s': --max-len %d needs %d rows of 'pos_emb.weight', it has %d" % (sd.source, L, L + 1,
                                                                                           pos.shape[0]))
    blocks = 0
    while "attention_layers.%d.in_proj_weight" % blocks in sd.tensors:
        blocks += 1
    if blocks == 0:
        raise BridgeError("'%s': tensor 'attention_layers.0.in_proj_weight' is missing" % sd.source)
    if d % heads != 0:
        raise BridgeError("d = %d is not divisible by --heads %d" % (d, heads))
    t = collections.OrderedDict()
    t["item_emb.weight"], t["pos_emb.weight"] = item, pos[:L + 1]
    for b in range(blocks):
        p = "blocks.%d." % b
        t[p + "ln_attn.weight"] = sd.take("attention_layernorms.%d.weight" % b, (d,))
        t[p + "ln_attn.bias"] = sd.take("attention_layernorms.%d.bias" % b, (d,))
        w = sd.take("attention_layers.%d.in_proj_weight" % b, (3 * d, d))
        bias = sd.take("attention_layers.%d.in_proj_bias" % b, (3 * d,))
        for i, proj in enumerate("qkv"):  # in_proj packs [W_q; W_k; W_v] (torch.nn.MultiheadAttention)
            t[p + "attn.%s.weight" % proj] = w[i * d:(i + 1) * d]
            t[p + "attn.%s.bias" % proj] = bias[i * d:(i + 1) * d]
        t[p + "attn.out.weight"] = sd.take("attention_layers.%d.out_proj.weight" % b, (d, d))
        t[p + "attn.out.bias"] = sd.take("attention_layers.%d.out_proj.bias" % b, (d,))
        t[p + "ln_ffn.weight"] = sd.take("forward_layernorms.%d.weight" % b, (d,))
        t[p + "ln_ffn.bias"] = sd.take("forward_layernorms.%d.bias" % b, (d,))
        for conv, fc in (("conv1", "fc1"), ("conv2", "fc2")):  # Conv1d kernel [d, d, 1] = Linear [d, d]
            t[p + "ffn.%s.weight" % fc] = sd.take("forward_layers.%d.%s.weight" % (b, conv), (d, d, 1))[:, :, 0]
            t[p + "ffn.%s.bias" % fc] = sd.take("forward_layers.%d.%s.bias" % (b, conv), (d,))
    t["ln_final.weight"] = sd.take("last_layernorm.weight", (d,))
    t["ln_final.bias"] = sd.take("last_layernorm.bias", (d,))
    sd.finish()
    config = {"num_items": item.shape[0] - 1, "d": d, "blocks": blocks, "heads": heads, "max_len": L, "hidden": d,
              "dropout": dropout, "layernorm_eps": 1e-8, "variant": variant}
    return config, t


def sasrec_to_torch(metadata, t, pos_rows, where):
    variant = metadata.get("sasrec.variant", "chord")
    if variant not in VARIANTS:
        raise BridgeError("%s: SASRec graph '%s' has no SASRec.pytorch equivalent (import one with --variant; "
                          "docs/interop.md)" % (where, variant))
    d, blocks = int(metadata["sasrec.d"]), int(metadata["sasrec.blocks"])
    if metadata.get("sasrec.output_projection") != "1" or int(metadata["sasrec.hidden"]) != d:
        raise BridgeError("%s: SASRec.pytorch needs an output projection and FFN width = d" % where)
    if abs(float(metadata["sasrec.layernorm_eps"]) - 1e-8) > 1e-12:
        raise BridgeError("%s: SASRec.pytorch's layernorms use eps 1e-8, this model %s" %
                          (where, metadata["sasrec.layernorm_eps"]))
    out = collections.OrderedDict()
    out["item_emb.weight"] = t["item_emb.weight"]
    pos = t["pos_emb.weight"]
    if pos_rows and pos_rows > pos.shape[0]:  # python/model.py builds pos_emb with a fixed 201 rows
        pos = np.concatenate([pos, np.zeros((pos_rows - pos.shape[0], d), np.float32)])
    out["pos_emb.weight"] = pos
    for b in range(blocks):
        p = "blocks.%d." % b
        out["attention_layernorms.%d.weight" % b] = t[p + "ln_attn.weight"]
        out["attention_layernorms.%d.bias" % b] = t[p + "ln_attn.bias"]
        out["attention_layers.%d.in_proj_weight" % b] = np.concatenate([t[p + "attn.%s.weight" % x] for x in "qkv"])
        out["attention_layers.%d.in_proj_bias" % b] = np.concatenate([t[p + "attn.%s.bias" % x] for x in "qkv"])
        out["attention_layers.%d.out_proj.weight" % b] = t[p + "attn.out.weight"]
        out["attention_layers.%d.out_proj.bias" % b] = t[p + "attn.out.bias"]
        out["forward_layernorms.%d.weight" % b] = t[p + "ln_ffn.weight"]
        out["forward_layernorms.%d.bias" % b] = t[p + "ln_ffn.bias"]
        for conv, fc in (("conv1", "fc1"), ("conv2", "fc2")):
            out["forward_layers.%d.%s.weight" % (b, conv)] = t[p + "ffn.%s.weight" % fc][:, :, None]
            out["forward_layers.%d.%s.bias" % (b, conv)] = t[p + "ffn.%s.bias" % fc]
    out["last_layernorm.weight"] = t["ln_final.weight"]
    out["last_layernorm.bias"] = t["ln_final.bias"]
    return out


def caser_from_torch(sd, T, negatives, dropout):
    item = sd.take("item_embeddings.weight")
    if item.ndim != 2 or item.shape[0] < 2:
        raise BridgeError("'%s': tensor 'item_embeddings.weight' must be [items + 1, d]" % sd.source)
    d = item.shape[1]
    users = sd.take("user_embeddings.weight")
    if users.ndim != 2 or users.shape[1] != d:
        raise BridgeError("'%s': tensor 'user_embeddings.weight' must be [users, %d]" % (sd.source, d))
    conv_v = sd.take("conv_v.weight")
    if conv_v.ndim != 4 or conv_v.shape[1] != 1 or conv_v.shape[3] != 1:
        raise BridgeError("'%s': tensor 'conv_v.weight' must be [nv, 1, L, 1] (Conv2d(1, nv, (L, 1)))" % sd.source)
    nv, L = conv_v.shape[0], conv_v.shape[2]
    conv_h0 = sd.take("conv_h.0.weight")
    nh = conv_h0.shape[0]
    t = collections.OrderedDict()
    # chord's user u is row u + 1 (row 0: nn::Embedding's padding row, unused); caser_pytorch's is row u
    t["item_emb.weight"] = item
    t["user_emb.weight"] = np.concatenate([np.zeros((1, d), np.float32), users])
    t["conv_v.weight"] = conv_v[:, 0, :, 0]
    t["conv_v.bias"] = sd.take("conv_v.bias", (nv,))
    for h in range(1, L + 1):  # Conv2d(1, nh, (h, d)) kernel [nh, 1, h, d] = Linear [nh, h d] over h rows
        t["conv_h.h%d.weight" % h] = sd.take("conv_h.%d.weight" % (h - 1), (nh, 1, h, d)).reshape(nh, h * d)
        t["conv_h.h%d.bias" % h] = sd.take("conv_h.%d.bias" % (h - 1), (nh,))
    t["fc1.weight"] = sd.take("fc1.weight", (d, nv * d + L * nh))
    t["fc1.bias"] = sd.take("fc1.bias", (d,))
    t["out_emb.weight"] = sd.take("W2.weight", (item.shape[0], 2 * d))
    t["out_bias.weight"] = sd.take("b2.weight", (item.shape[0], 1))[:, 0]
    sd.finish()
    config = {"num_items": item.shape[0] - 1, "num_users": users.shape[0], "d": d, "L": L, "T": T, "nh": nh,
              "nv": nv, "negatives": negatives, "dropout": dropout}
    return config, t


def caser_to_torch(metadata, t):
    L, d = int(metadata["caser.L"]), int(metadata["caser.d"])
    out = collections.OrderedDict()
    out["user_embeddings.weight"] = t["user_emb.weight"][1:]
    out["item_embeddings.weight"] = t["item_emb.weight"]
    out["conv_v.weight"] = t["conv_v.weight"][:, None, :, None]
    out["conv_v.bias"] = t["conv_v.bias"]
    for h in range(1, L + 1):
        w = t["conv_h.h%d.weight" % h]
        out["conv_h.%d.weight" % (h - 1)] = w.reshape(w.shape[0], 1, h, d)
        out["conv_h.%d.bias" % (h - 1)] = t["conv_h.h%d.bias" % h]
    out["fc1.weight"] = t["fc1.weight"]
    out["fc1.bias"] = t["fc1.bias"]
    out["W2.weight"] = t["out_emb.weight"]
    out["b2.weight"] = t["out_bias.weight"][:, None]
    return out


# --- commands -----------------------------------------------------------------------------------------------

def command_import(a):
    sd = StateDict(load_state_dict(a.state_dict, a.allow_pickle), a.state_dict)
    # the data an imported model was trained on is unknown (no fingerprint, no id maps: the dense index is
    # the file's id, as in SASRec.pytorch's preprocessed 1-based files)
    common = {"data.fingerprint": "unknown", "data.source": "unknown (imported)", "import.format": a.format}
    if a.format == "sasrec-pytorch":
        if a.variant is None:
            raise BridgeError("--variant is required for sasrec-pytorch: a state_dict does not say which graph "
                              "trained it (legacy: the root model.py before 2025; norm-first / post-ln: "
                              "python/model.py with --norm_first true / false)")
        config, tensors = sasrec_from_torch(sd, a.variant, a.max_len, a.heads, 0.2 if a.dropout is None else a.dropout)
        write_chord_model(a.out, dict(common, **sasrec_metadata(config)), tensors,
                          sasrec_parameter_names(config["blocks"]))
    else:
        if a.variant is not None or a.max_len is not None:
            raise BridgeError("--variant and --max-len are SASRec options (caser-pytorch has one graph)")
        config, tensors = caser_from_torch(sd, 3, 3, 0.5 if a.dropout is None else a.dropout)
        write_chord_model(a.out, dict(common, **caser_metadata(config)), tensors, caser_parameter_names(config["L"]))
    print("wrote %s (%s, %s)" % (a.out, a.format, ", ".join("%s %s" % kv for kv in config.items())))


def command_export(a):
    import torch
    metadata, t = read_chord_model(a.model)
    where = "model '%s'" % a.model
    arch = metadata.get("architecture")
    want = {"sasrec-pytorch": "sasrec", "caser-pytorch": "caser"}[a.format]
    if arch != want:
        raise BridgeError("%s: holds a %s model, --format %s needs %s" % (where, arch, a.format, want))
    expected = (sasrec_parameter_names(int(metadata["sasrec.blocks"])) if arch == "sasrec"
                else caser_parameter_names(int(metadata["caser.L"])))
    if list(t) != expected:
        extra = [n for n in t if n not in expected] + [n for n in expected if n not in t]
        raise BridgeError("%s: tensor '%s' does not belong to the architecture in its metadata" %
                          (where, extra[0] if extra else "(order)"))
    out = sasrec_to_torch(metadata, t, a.pos_rows, where) if arch == "sasrec" else caser_to_torch(metadata, t)
    state = collections.OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v))) for k, v in out.items())
    folder = os.path.dirname(os.path.abspath(a.out))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pth")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, a.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print("wrote %s (%s%s)" % (a.out, a.format, ", variant " + metadata["sasrec.variant"] if arch == "sasrec" else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="a PyTorch checkpoint -> a chord model file")
    imp.add_argument("--format", required=True, choices=("sasrec-pytorch", "caser-pytorch"))
    imp.add_argument("--state-dict", required=True, help="the .pth file (a state_dict)")
    imp.add_argument("--variant", choices=VARIANTS, help="SASRec.pytorch's graph (required for sasrec-pytorch)")
    imp.add_argument("--max-len", type=int, help="SASRec input length (default: pos_emb rows - 1)")
    imp.add_argument("--heads", type=int, default=1, help="attention heads (not in a state_dict; default 1)")
    imp.add_argument("--dropout", type=float, help="for fine-tuning in chord (default 0.2 SASRec, 0.5 Caser)")
    imp.add_argument("--allow-pickle", action="store_true", help="also load a whole pickled model (runs its code)")
    imp.add_argument("--out", required=True)
    exp = sub.add_parser("export", help="a chord model file -> a PyTorch state_dict")
    exp.add_argument("--model", required=True)
    exp.add_argument("--format", required=True, choices=("sasrec-pytorch", "caser-pytorch"))
    exp.add_argument("--pos-rows", type=int, help="pad pos_emb with zero rows to this many (python/model.py: 201)")
    exp.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    try:
        if a.command == "import":
            if a.max_len is not None and a.max_len < 1 or a.heads < 1:
                raise BridgeError("--max-len and --heads must be positive")
            command_import(a)
        else:
            command_export(a)
    except BridgeError as e:
        print("torch_bridge: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
