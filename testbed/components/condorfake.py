#!/usr/bin/python3
# FAKE HTCondor for apf-agent's testbed -- NOT HTCondor.
#
# HTCondor daemons cannot be installed on the test machine (TESTBED.md §8), so this one file stands in for a
# schedd and its command-line tools: condor_submit, condor_q, condor_history, condor_rm (and condor_version).
# It is installed once and symlinked under each command name; argv[0] picks the command. `condorfake.py schedd`
# is the fake schedd daemon (started by testbed/components/condorfake.sh): it moves jobs idle(1) -> running(2)
# -> completed(4) after configurable delays, on a fixed number of slots, and really runs each job's executable
# with its arguments, environment, initialdir and output/error files.
#
# The output layouts follow recorded real outputs (/work/shared/fixtures/batch-outputs/htcondor, see SOURCES.md
# there) and HTCondor's documented formats: `condor_submit -terse` "C.0 - C.N"; `-json` ("[", "{", attributes
# one per line with two spaces, "}" and "," on their own lines, "]"); `-af[:jrtlnhV,]`; `-long`; condor_rm's
# "All jobs in cluster C have been marked for removal" / "Couldn't find/remove all jobs in cluster C" (TARDIS
# tests, MatterMiners/tardis). Texts not in those sources (e.g. "Job C.P not found", the empty output of
# `-json` with no match, the schedd-down errors) are unverified against a live schedd.
#
# State (one spool directory, owned by the submitting user): queue.json (the job queue), history.jsonl (one
# finished/removed job ad per line, oldest first), next_cluster, exit/ (exit codes written by the job wrapper),
# lock (fcntl lock around every change), schedd.pid (the daemon; its absence makes the tools fail like a schedd
# that is down).
#
# Knobs (environment of the daemon, set by the component): CONDORFAKE_SPOOL, CONDORFAKE_IDLE_SECONDS (default
# 2), CONDORFAKE_MIN_RUN_SECONDS (2), CONDORFAKE_SLOTS (8). Per job, in the submit file: +FakeIdleSeconds = N,
# +FakeMinRunSeconds = N. `hold = true` submits held (JobStatus 5).

import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

SPOOL = os.environ.get("CONDORFAKE_SPOOL", "@SPOOL@")
VERSION = "$CondorVersion: 23.0.0 2023-09-29 apf-agent-testbed-FAKE (not HTCondor) $"
PLATFORM = "$CondorPlatform: x86_64_Debian12 $"
UNIVERSES = {"standard": 1, "vanilla": 5, "scheduler": 7, "grid": 9, "java": 10, "parallel": 11,
             "local": 12, "vm": 13, "docker": 5, "container": 5}
HOST = socket.gethostname()


class Undefined:
    def __repr__(self):
        return "undefined"


class Error:
    def __repr__(self):
        return "error"


UNDEFINED = Undefined()
ERROR = Error()


class Expr:
    """An unevaluated ClassAd expression kept as text (stored in JSON as {"$expr": text})."""

    def __init__(self, text):
        self.text = text


class UsageError(Exception):
    pass


# ------------------------------------------------------------------ ClassAd expressions (a useful subset)

TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<op>=\?=|=!=|==|!=|<=|>=|&&|\|\||[-+*/%<>!(),?:.])
    | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.X)


def tokenize(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(f"cannot parse expression at: {text[pos:]!r}")
        pos = m.end()
        for kind in ("num", "str", "op", "id"):
            v = m.group(kind)
            if v is not None:
                out.append((kind, v))
                break
    return out


class Parser:
    # expr := cond ; cond := or ('?' expr ':' expr)? ; or := and ('||' and)* ; and := cmp ('&&' cmp)*
    # cmp := add (op add)* ; add := mul (('+'|'-') mul)* ; mul := unary (('*'|'/'|'%') unary)*
    def __init__(self, text):
        self.toks = tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, value=None):
        t = self.peek()
        if t[0] is None or (value is not None and t[1].lower() != value):
            raise UsageError(f"expected {value or 'a value'} in expression")
        self.i += 1
        return t

    def parse(self):
        e = self.cond()
        if self.i != len(self.toks):
            raise UsageError(f"unexpected {self.toks[self.i][1]!r} in expression")
        return e

    def cond(self):
        c = self.binary(0)
        if self.peek()[1] == "?":
            self.take("?")
            a = self.cond()
            self.take(":")
            b = self.cond()
            return ("?:", c, a, b)
        return c

    LEVELS = [("||",), ("&&",), ("==", "!=", "=?=", "=!=", "is", "isnt", "<", "<=", ">", ">="), ("+", "-"),
              ("*", "/", "%")]

    def binary(self, level):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            kind, v = self.peek()
            if v is not None and kind in ("op", "id") and v.lower() in self.LEVELS[level]:
                self.i += 1
                left = (v.lower(), left, self.binary(level + 1))
            else:
                return left

    def unary(self):
        kind, v = self.peek()
        if v in ("!", "-", "+"):
            self.i += 1
            return ("u" + v, self.unary())
        return self.primary()

    def primary(self):
        kind, v = self.take()
        if kind == "num":
            return ("lit", float(v) if any(c in v for c in ".eE") else int(v))
        if kind == "str":
            return ("lit", json.loads(v) if "\\" in v else v[1:-1])
        if v == "(":
            e = self.cond()
            self.take(")")
            return e
        if kind == "id":
            low = v.lower()
            if low == "true":
                return ("lit", True)
            if low == "false":
                return ("lit", False)
            if low == "undefined":
                return ("lit", UNDEFINED)
            if low == "error":
                return ("lit", ERROR)
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                if self.peek()[1] != ")":
                    args.append(self.cond())
                    while self.peek()[1] == ",":
                        self.take(",")
                        args.append(self.cond())
                self.take(")")
                return ("call", low, args)
            if low in ("my", "target") and self.peek()[1] == ".":
                self.take(".")
                return ("attr", self.take()[1])
            return ("attr", v)
        raise UsageError(f"unexpected {v!r} in expression")


def lookup(ad, name):
    low = name.lower()
    for k, v in ad.items():
        if k.lower() == low:
            return v
    return UNDEFINED


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def evaluate(node, ad, depth=0):
    if depth > 50:
        return ERROR
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "attr":
        v = lookup(ad, node[1])
        if isinstance(v, Expr):
            try:
                return evaluate(Parser(v.text).parse(), ad, depth + 1)
            except UsageError:
                return ERROR
        return v
    if op == "call":
        return call(node[1], [evaluate(a, ad, depth + 1) for a in node[2]])
    if op == "?:":
        c = evaluate(node[1], ad, depth + 1)
        if c is UNDEFINED or c is ERROR:
            return c
        return evaluate(node[2] if truthy(c) else node[3], ad, depth + 1)
    if op == "u!":
        v = evaluate(node[1], ad, depth + 1)
        return v if v in (UNDEFINED, ERROR) else (not truthy(v))
    if op in ("u-", "u+"):
        v = evaluate(node[1], ad, depth + 1)
        if is_num(v):
            return -v if op == "u-" else v
        return v if v in (UNDEFINED, ERROR) else ERROR
    a = evaluate(node[1], ad, depth + 1)
    if op == "&&":
        if a is False:
            return False
        b = evaluate(node[2], ad, depth + 1)
        if a is True:
            return b if isinstance(b, bool) or b in (UNDEFINED, ERROR) else ERROR
        if b is False:
            return False
        return a if a in (UNDEFINED, ERROR) else ERROR
    if op == "||":
        if a is True:
            return True
        b = evaluate(node[2], ad, depth + 1)
        if a is False:
            return b if isinstance(b, bool) or b in (UNDEFINED, ERROR) else ERROR
        if b is True:
            return True
        return a if a in (UNDEFINED, ERROR) else ERROR
    b = evaluate(node[2], ad, depth + 1)
    if op in ("=?=", "is", "=!=", "isnt"):
        same = type(a) is type(b) and (a == b if not isinstance(a, (Undefined, Error)) else True)
        return same if op in ("=?=", "is") else not same
    if a is ERROR or b is ERROR:
        return ERROR
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if op in ("==", "!=", "<", "<=", ">", ">="):
        if isinstance(a, str) and isinstance(b, str):
            a, b = a.lower(), b.lower()
        elif isinstance(a, bool) and isinstance(b, bool):
            pass
        elif not (is_num(a) and is_num(b)):
            return ERROR
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if is_num(a) and is_num(b):
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a // b if isinstance(a, int) and isinstance(b, int) else a / b
            if op == "%":
                return a % b
        except ZeroDivisionError:
            return ERROR
    return ERROR


def truthy(v):
    if isinstance(v, bool):
        return v
    if is_num(v):
        return v != 0
    return False


def call(name, args):
    def s(i):
        return args[i] if i < len(args) else UNDEFINED
    if name in ("isundefined",):
        return s(0) is UNDEFINED
    if name == "iserror":
        return s(0) is ERROR
    if name == "ifthenelse":
        c = s(0)
        if c in (UNDEFINED, ERROR):
            return c
        return s(1) if truthy(c) else s(2)
    if any(a is ERROR for a in args):
        return ERROR
    if any(a is UNDEFINED for a in args):
        return UNDEFINED
    if name == "time":
        return int(time.time())
    if name == "regexp" and isinstance(s(0), str) and isinstance(s(1), str):
        flags = re.I if isinstance(s(2), str) and "i" in s(2).lower() else 0
        return re.search(s(0), s(1), flags) is not None
    if name == "stringlistmember" and isinstance(s(0), str) and isinstance(s(1), str):
        delim = s(2) if isinstance(s(2), str) else " ,"
        items = [x for x in re.split("[" + re.escape(delim) + "]+", s(1)) if x]
        return s(0) in items
    if name == "strcmp" and isinstance(s(0), str) and isinstance(s(1), str):
        return (s(0) > s(1)) - (s(0) < s(1))
    if name == "tolower" and isinstance(s(0), str):
        return s(0).lower()
    if name == "toupper" and isinstance(s(0), str):
        return s(0).upper()
    if name == "size" and isinstance(s(0), str):
        return len(s(0))
    if name == "int" and (is_num(s(0)) or isinstance(s(0), bool)):
        return int(s(0))
    if name == "real" and is_num(s(0)):
        return float(s(0))
    if name == "string":
        return unparse_value(s(0), raw=False)
    return ERROR


def parse_literal(text):
    """A submit-file/+Attr value: a ClassAd literal when it is one, else an expression kept as text."""
    t = text.strip()
    try:
        node = Parser(t).parse()
    except UsageError:
        return Expr(t)
    if node[0] == "lit":
        return node[1]
    if node[0] == "u-" and node[1][0] == "lit" and is_num(node[1][1]):
        return -node[1][1]
    return Expr(t)


def fmt_real(v):
    r = repr(float(v))
    return r if ("." in r or "e" in r or "inf" in r or "nan" in r) else r + ".0"


def unparse_value(v, raw=True):
    """ClassAd text of a value. raw=False prints strings without quotes (-af without :r/:V)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_real(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if raw else v
    if isinstance(v, Expr):
        return v.text
    return repr(v)


def json_value(v):
    if isinstance(v, Expr):
        return "\\/Expr(" + v.text + ")\\/"
    return v


# ------------------------------------------------------------------ spool state

def spool(*parts):
    return os.path.join(SPOOL, *parts)


class Locked:
    def __enter__(self):
        self.f = open(spool("lock"), "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def encode_ad(ad):
    return {k: ({"$expr": v.text} if isinstance(v, Expr) else v) for k, v in ad.items()}


def decode_ad(d):
    return {k: (Expr(v["$expr"]) if isinstance(v, dict) and "$expr" in v else v) for k, v in d.items()}


def load_queue():
    try:
        with open(spool("queue.json")) as f:
            return [decode_ad(d) for d in json.load(f)]
    except FileNotFoundError:
        return []


def save_queue(q):
    tmp = spool(f"queue.json.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump([encode_ad(a) for a in q], f)
    os.replace(tmp, spool("queue.json"))


def append_history(ads):
    if not ads:
        return
    with open(spool("history.jsonl"), "a") as f:
        for ad in ads:
            f.write(json.dumps(encode_ad(ad)) + "\n")


def load_history():
    try:
        with open(spool("history.jsonl")) as f:
            return [decode_ad(json.loads(line)) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def schedd_alive():
    try:
        with open(spool("schedd.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"schedd" in f.read()
    except (OSError, ValueError):
        return False


def job_id(ad):
    return f"{ad.get('ClusterId')}.{ad.get('ProcId')}"


def user_name():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


# ------------------------------------------------------------------ output

def print_json(ads, attrs):
    # HTCondor's layout: "[", then per ad "{", attributes ("  \"Name\": value", comma-separated), "}", with
    # a line "," between ads, then "]". Nothing at all when no ad matches (unverified).
    if not ads:
        return
    out = ["["]
    for n, ad in enumerate(ads):
        if n:
            out.append(",")
        out.append("{")
        keys = attrs_for(ad, attrs)
        lines = [f"  {json.dumps(k)}: {json.dumps(json_value(ad[k]), ensure_ascii=False)}" for k in keys]
        lines = [ln.replace("\\\\/Expr(", "\\/Expr(").replace(")\\\\/", ")\\/") for ln in lines]
        out.append(",\n".join(lines))
        out.append("}")
    out.append("]")
    sys.stdout.write("\n".join(out) + "\n")


def attrs_for(ad, attrs):
    if attrs:
        keys = []
        for a in attrs:
            for k in ad:
                if k.lower() == a.lower() and k not in keys:
                    keys.append(k)
        return sorted(keys, key=str.lower)
    return sorted(ad, key=str.lower)


def print_long(ads, attrs):
    for ad in ads:
        for k in attrs_for(ad, attrs):
            print(f"{k} = {unparse_value(ad[k])}")
        print()


def print_af(ads, opts, exprs):
    sep = ","  if "," in opts else ("\t" if "t" in opts else " ")
    label, raw, quoted = "l" in opts, "r" in opts, "V" in opts
    newline_each = "n" in opts
    parsed = [Parser(e).parse() for e in exprs]
    if "h" in opts:
        print(sep.join(exprs))
    for ad in ads:
        fields = []
        for text, node in zip(exprs, parsed):
            if raw and node[0] == "attr":
                v = lookup(ad, node[1])
                s = "undefined" if v is UNDEFINED else unparse_value(v, raw=True)
            else:
                v = evaluate(node, ad)
                s = unparse_value(v, raw=quoted)
            fields.append(f"{text} = {s}" if label else s)
        line = ("\n" if newline_each else sep).join(fields)
        if "j" in opts:
            line = job_id(ad) + (" " if not newline_each else "\n") + line
        print(line)
        if newline_each:
            print()


STATUS_LETTER = {1: "I", 2: "R", 3: "X", 4: "C", 5: "H", 6: ">", 7: "S"}


def print_table(ads, title):
    print()
    print(f"-- {title}: condorfake@{HOST} : <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP&sock=schedd_fake> @ "
          + time.strftime("%m/%d/%y %H:%M:%S"))
    print(" ID         OWNER            SUBMITTED     RUN_TIME ST PRI SIZE  CMD")
    now = int(time.time())
    counts = {}
    for ad in ads:
        st = ad.get("JobStatus", 0)
        counts[st] = counts.get(st, 0) + 1
        start = ad.get("JobCurrentStartDate")
        run = (now - start) if st == 2 and isinstance(start, int) else 0
        d, rem = divmod(run, 86400)
        h, rem = divmod(rem, 3600)
        m, sec = divmod(rem, 60)
        q = time.localtime(ad.get("QDate", now))
        print(f"{job_id(ad):<10} {ad.get('Owner', ''):<14} {q.tm_mon:>2}/{q.tm_mday:<2} {q.tm_hour:02}:{q.tm_min:02}"
              f" {d:>3}+{h:02}:{m:02}:{sec:02} {STATUS_LETTER.get(st, '?')}  {ad.get('JobPrio', 0):<3} 0.0   "
              f"{os.path.basename(str(ad.get('Cmd', '')))} {ad.get('Arguments', '')}".rstrip())
    print()
    if title == "Schedd":
        print(f"Total for query: {len(ads)} jobs; {counts.get(4, 0)} completed, {counts.get(3, 0)} removed, "
              f"{counts.get(1, 0)} idle, {counts.get(2, 0)} running, {counts.get(5, 0)} held, "
              f"{counts.get(7, 0)} suspended")


# ------------------------------------------------------------------ selection (ids, users, -constraint)

ID_RE = re.compile(r"^(\d+)(?:\.(\d+))?$")


def select(ads, ids, users, constraint):
    node = Parser(constraint).parse() if constraint else None
    out = []
    for ad in ads:
        if ids or users:
            hit = False
            for c, p in ids:
                if ad.get("ClusterId") == c and (p is None or ad.get("ProcId") == p):
                    hit = True
            for u in users:
                if str(ad.get("Owner", "")).lower() == u.lower():
                    hit = True
            if not hit:
                continue
        if node is not None and evaluate(node, ad) is not True:
            continue
        out.append(ad)
    return out


def parse_query_args(argv, allow_limit):
    """Options shared by condor_q and condor_history."""
    o = {"json": False, "long": False, "af": None, "afopts": "", "attrs": None, "constraint": None,
         "ids": [], "users": [], "limit": None}
    i = 0
    constraints = []
    while i < len(argv):
        a = argv[i]
        low = a.lower()
        def arg():
            nonlocal i
            i += 1
            if i >= len(argv):
                raise UsageError(f"{a} needs an argument")
            return argv[i]
        if low in ("-json",):
            o["json"] = True
        elif low in ("-long", "-l"):
            o["long"] = True
        elif low.startswith("-af") or low.startswith("-autoformat"):
            o["afopts"] = a.split(":", 1)[1] if ":" in a else ""
            o["af"] = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                i += 1
                o["af"].append(argv[i])
            if not o["af"]:
                raise UsageError("-af needs at least one attribute")
        elif low in ("-attributes", "-attribute", "-attr"):
            o["attrs"] = [x.strip() for x in arg().split(",") if x.strip()]
        elif low in ("-constraint", "-const"):
            constraints.append(arg())
        elif low in ("-limit", "-match", "-number") and allow_limit:
            try:
                o["limit"] = int(arg())
            except ValueError:
                raise UsageError("-limit needs a number")
        elif low in ("-name", "-pool", "-schedd", "-file", "-userlog", "-submitter"):
            v = arg()
            if low == "-submitter":
                o["users"].append(v)
        elif low in ("-nobatch", "-batch", "-allusers", "-totals", "-wide", "-forwards", "-backwards", "-global",
                     "-all"):
            pass
        elif a.startswith("-"):
            raise UsageError(f"unsupported option {a} (fake condor)")
        else:
            m = ID_RE.match(a)
            if m:
                o["ids"].append((int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None))
            else:
                o["users"].append(a)
        i += 1
    if constraints:
        o["constraint"] = " && ".join(f"({c})" for c in constraints)
    return o


def emit(ads, o, title):
    if o["json"]:
        print_json(ads, o["attrs"])
    elif o["af"] is not None:
        print_af(ads, o["afopts"], o["af"])
    elif o["long"]:
        print_long(ads, o["attrs"])
    else:
        print_table(ads, title)


def schedd_down_error(tool):
    if tool == "condor_submit":
        sys.stderr.write("\nERROR: Can't find address of local schedd\n")
    else:
        sys.stderr.write(f"\n-- Failed to fetch ads from: <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP"
                         f"&sock=schedd_fake> : {HOST}\nCEDAR:6001:Failed to connect to <127.0.0.1:9618>\n")
    return 1


# ------------------------------------------------------------------ condor_q / condor_history

def cmd_q(argv):
    o = parse_query_args(argv, allow_limit=False)
    if not schedd_alive():
        return schedd_down_error("condor_q")
    with Locked():
        q = load_queue()
    ads = select(q, o["ids"], o["users"], o["constraint"])
    ads.sort(key=lambda a: (a.get("ClusterId", 0), a.get("ProcId", 0)))
    emit(ads, o, "Schedd")
    return 0


def cmd_history(argv):
    o = parse_query_args(argv, allow_limit=True)
    with Locked():
        h = load_history()
    h.reverse()   # newest first, like condor_history's default (backwards)
    ads = select(h, o["ids"], o["users"], o["constraint"])
    if o["limit"] is not None:
        ads = ads[:max(o["limit"], 0)]
    if not o["json"] and o["af"] is None and not o["long"]:
        print(" ID     OWNER          SUBMITTED   RUN_TIME     ST  COMPLETED   CMD")
        for ad in ads:
            print(f"{job_id(ad):<7} {ad.get('Owner', ''):<14} {STATUS_LETTER.get(ad.get('JobStatus'), '?')} "
                  f"{os.path.basename(str(ad.get('Cmd', '')))}")
        return 0
    emit(ads, o, "History")
    return 0


# ------------------------------------------------------------------ condor_rm

def cmd_rm(argv):
    ids, users, constraint, all_jobs = [], [], None, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-constraint", "-const"):
            i += 1
            if i >= len(argv):
                raise UsageError("-constraint needs an argument")
            constraint = argv[i]
        elif a == "-all":
            all_jobs = True
        elif a in ("-name", "-pool", "-addr"):
            i += 1
        elif a in ("-forcex", "-debug"):
            pass
        elif a.startswith("-"):
            raise UsageError(f"unsupported option {a} (fake condor_rm)")
        else:
            m = ID_RE.match(a)
            if m:
                ids.append((int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None))
            else:
                users.append(a)
        i += 1
    if not (ids or users or constraint or all_jobs):
        sys.stderr.write("Usage: condor_rm [options] [cluster | cluster.proc | user] ...\n")
        return 1
    if not schedd_alive():
        sys.stderr.write("\nERROR: Can't find address of local schedd\n")
        return 1
    me = user_name()
    rc = 0
    now = int(time.time())
    with Locked():
        q = load_queue()

        def mark(pred):
            n = 0
            for ad in q:
                if ad.get("Owner") == me and ad.get("JobStatus") != 3 and pred(ad):
                    ad["LastJobStatus"] = ad.get("JobStatus")
                    ad["JobStatus"] = 3
                    ad["EnteredCurrentStatus"] = now
                    ad["RemoveReason"] = f"via condor_rm (by user {me})"
                    n += 1
            return n

        for c, p in ids:
            if p is None:
                if mark(lambda ad: ad.get("ClusterId") == c):
                    print(f"All jobs in cluster {c} have been marked for removal")
                else:
                    sys.stderr.write(f"Couldn't find/remove all jobs in cluster {c}\n")
                    rc = 1
            else:
                if mark(lambda ad: ad.get("ClusterId") == c and ad.get("ProcId") == p):
                    print(f"Job {c}.{p} marked for removal")
                else:
                    sys.stderr.write(f"Job {c}.{p} not found\n")
                    rc = 1
        for u in users:
            if mark(lambda ad: str(ad.get("Owner", "")).lower() == u.lower()):
                print(f'All jobs of user "{u}" have been marked for removal')
            else:
                sys.stderr.write(f"Couldn't find/remove all of user {u}'s jobs\n")
                rc = 1
        if constraint:
            node = Parser(constraint).parse()
            if mark(lambda ad: evaluate(node, ad) is True):
                print(f"All jobs matching constraint ({constraint}) have been marked for removal")
            else:
                sys.stderr.write(f"Couldn't find/remove all jobs matching constraint ({constraint})\n")
                rc = 1
        if all_jobs:
            if mark(lambda ad: True):
                print("All jobs have been marked for removal")
            else:
                sys.stderr.write("Couldn't find/remove all jobs\n")
                rc = 1
        save_queue(q)
    return rc


# ------------------------------------------------------------------ condor_submit

def split_args_new(s):
    """HTCondor's new argument syntax (inside the outer double quotes): whitespace separates; single quotes
    group, '' is a literal single quote inside them; "" is a literal double quote."""
    s = s.replace('""', '"')
    out, cur, inq, have, i = [], [], False, False, 0
    while i < len(s):
        ch = s[i]
        if inq:
            if ch == "'":
                if i + 1 < len(s) and s[i + 1] == "'":
                    cur.append("'")
                    i += 1
                else:
                    inq = False
            else:
                cur.append(ch)
        elif ch == "'":
            inq, have = True, True
        elif ch.isspace():
            if cur or have:
                out.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(ch)
        i += 1
    if inq:
        raise UsageError("unbalanced single quote in arguments/environment")
    if cur or have:
        out.append("".join(cur))
    return out


def parse_arguments(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return split_args_new(v[1:-1])
    return v.split()


def parse_environment(v):
    v = v.strip()
    env = {}
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        items = split_args_new(v[1:-1])
    else:
        items = [x for x in v.split(";") if x]
    for it in items:
        if "=" not in it:
            raise UsageError(f"environment entry without '=': {it!r}")
        k, val = it.split("=", 1)
        env[k.strip()] = val
    return env


def env_to_new_syntax(env):
    def q(v):
        if v == "" or any(c.isspace() or c in "'\"" for c in v):
            return "'" + v.replace("'", "''") + "'"
        return v
    return " ".join(f"{k}={q(v)}" for k, v in env.items())


def args_to_new_syntax(args):
    def q(a):
        if a == "" or any(c.isspace() or c in "'\"" for c in a):
            return "'" + a.replace("'", "''") + "'"
        return a
    return " ".join(q(a) for a in args)


MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")


def expand(value, macros, cluster, proc):
    def rep(m):
        name = m.group(1).lower()
        if name in ("cluster", "clusterid"):
            return str(cluster)
        if name in ("process", "procid"):
            return str(proc)
        return macros.get(name, "")
    for _ in range(10):
        new = MACRO.sub(rep, value)
        if new == value:
            break
        value = new
    return value


def read_submit(text):
    """Submit description: list of ("set", key, value) / ("attr", name, value) / ("queue", n) in order."""
    stmts = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + lines[i].strip()
        i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"(?i)^queue\b\s*(.*)$", s)
        if m:
            rest = m.group(1).strip()
            if rest == "":
                stmts.append(("queue", 1))
            elif rest.isdigit():
                stmts.append(("queue", int(rest)))
            else:
                raise UsageError(f"fake condor_submit supports only 'queue' and 'queue N', not: {s}")
            continue
        m = re.match(r"^([+]|MY\.)([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", s, re.I)
        if m:
            stmts.append(("attr", m.group(2), m.group(3)))
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$", s)
        if m:
            stmts.append(("set", m.group(1).lower(), m.group(2)))
            continue
        raise UsageError(f"Parse error in submit file: {s}")
    return stmts


def cmd_submit(argv):
    terse, files, appends, batch_name = False, [], [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-terse",):
            terse = True
        elif a in ("-a", "-append"):
            i += 1
            appends.append(argv[i])
        elif a in ("-batch-name",):
            i += 1
            batch_name = argv[i]
        elif a in ("-name", "-pool", "-remote", "-addr"):
            i += 1
        elif a in ("-verbose", "-v", "-debug", "-disable", "-spool"):
            pass
        elif a == "-":
            files.append("-")
        elif a.startswith("-"):
            raise UsageError(f"unsupported option {a} (fake condor_submit)")
        else:
            files.append(a)
        i += 1
    if len(files) > 1:
        raise UsageError("only one submit description file")
    if not files or files[0] == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(files[0]) as f:
                text = f.read()
        except OSError as e:
            sys.stderr.write(f"\nERROR: Failed to open command file ({e.strerror})\n")
            return 1
    stmts = read_submit(text)
    # -a lines go before the last queue statement (condor_submit appends them to the description).
    extra = read_submit("\n".join(appends)) if appends else []
    qidx = max([n for n, st in enumerate(stmts) if st[0] == "queue"], default=len(stmts))
    stmts = stmts[:qidx] + extra + stmts[qidx:]
    if not any(st[0] == "queue" for st in stmts):
        sys.stderr.write("\nERROR: no 'queue' statement in submit description (fake condor_submit)\n")
        return 1
    if not schedd_alive():
        return schedd_down_error("condor_submit")
    cwd = os.getcwd()
    me = user_name()
    now = int(time.time())
    with Locked():
        try:
            with open(spool("next_cluster")) as f:
                cluster = int(f.read().strip() or "1")
        except FileNotFoundError:
            cluster = 1
        macros, attrs, new_ads, proc = {}, {}, [], 0
        for st in stmts:
            if st[0] == "set":
                macros[st[1]] = st[2]
                continue
            if st[0] == "attr":
                attrs[st[1]] = st[2]
                continue
            for _ in range(st[1]):
                try:
                    ad = make_ad(macros, attrs, cluster, proc, cwd, me, now, batch_name)
                except UsageError as e:
                    sys.stderr.write(f"\nERROR: {e}\n")
                    return 1
                new_ads.append(ad)
                proc += 1
        if not new_ads:
            sys.stderr.write("\nERROR: no jobs queued (fake condor_submit)\n")
            return 1
        q = load_queue()
        q.extend(new_ads)
        save_queue(q)
        with open(spool("next_cluster.tmp"), "w") as f:
            f.write(str(cluster + 1))
        os.replace(spool("next_cluster.tmp"), spool("next_cluster"))
    for ad in new_ads:
        write_userlog(ad, "000", f"Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP"
                                 f"&sock=schedd_fake>")
    if terse:
        print(f"{cluster}.0 - {cluster}.{len(new_ads) - 1}")
    else:
        print("Submitting job(s)" + "." * len(new_ads))
        print(f"{len(new_ads)} job(s) submitted to cluster {cluster}.")
    return 0


def make_ad(macros, attrs, cluster, proc, cwd, me, now, batch_name):
    def get(key, default=None):
        v = macros.get(key)
        return expand(v, macros, cluster, proc).strip() if v is not None else default

    universe = (get("universe", "vanilla") or "vanilla").lower()
    if universe not in UNIVERSES:
        raise UsageError(f"I don't know about the '{universe}' universe.")
    iwd = get("initialdir") or get("initial_dir") or get("iwd") or cwd
    if not os.path.isabs(iwd):
        iwd = os.path.join(cwd, iwd)
    exe = get("executable")
    if not exe:
        raise UsageError("No 'executable' parameter was provided")
    cmd = exe if os.path.isabs(exe) else os.path.join(iwd, exe)
    if universe != "grid" and not os.path.isfile(cmd):
        raise UsageError(f"Executable file {cmd} does not exist")
    args = parse_arguments(get("arguments", get("args", "")) or "")
    env = {}
    if (get("getenv", "false") or "false").lower() in ("true", "yes", "1"):
        env.update(os.environ)
    if get("environment") or get("env"):
        env.update(parse_environment(get("environment") or get("env")))

    def path(key, default):
        v = get(key)
        if not v:
            return default
        return v if os.path.isabs(v) or v == "/dev/null" else os.path.join(iwd, v)

    held = (get("hold", "false") or "false").lower() in ("true", "yes", "1")
    ad = {
        "MyType": "Job", "TargetType": "Machine",
        "ClusterId": cluster, "ProcId": proc,
        "GlobalJobId": f"{HOST}#{cluster}.{proc}#{now}",
        "Owner": me, "User": f"{me}@{HOST}",
        "QDate": now, "EnteredCurrentStatus": now,
        "JobStatus": 5 if held else 1,
        "JobUniverse": UNIVERSES[universe],
        "Cmd": cmd, "Arguments": args_to_new_syntax(args), "Environment": env_to_new_syntax(env),
        "Iwd": iwd, "In": path("input", "/dev/null"), "Out": path("output", "/dev/null"),
        "Err": path("error", "/dev/null"), "JobPrio": 0, "NumJobStarts": 0, "CompletionDate": 0,
        "RequestCpus": int(get("request_cpus", "1") or 1), "RequestDisk": Expr("DiskUsage"),
        "RequestMemory": Expr("ifthenelse(MemoryUsage =!= undefined,MemoryUsage,( ImageSize + 1023 ) / 1024)"),
        "CondorVersion": VERSION, "CondorPlatform": PLATFORM,
    }
    if get("request_memory"):
        ad["RequestMemory"] = parse_literal(get("request_memory"))
    if get("log"):
        ad["UserLog"] = path("log", None)
    if universe == "grid" and get("grid_resource"):
        ad["GridResource"] = get("grid_resource")
    if batch_name:
        ad["JobBatchName"] = batch_name
    if held:
        ad["HoldReason"] = "submitted on hold at user's request"
        ad["HoldReasonCode"] = 15
        ad["HoldReasonSubCode"] = 0
    for name, value in attrs.items():
        ad[name] = parse_literal(expand(value, macros, cluster, proc))
    return ad


def write_userlog(ad, code, text):
    log = ad.get("UserLog")
    if not isinstance(log, str) or not log:
        return
    try:
        with open(log, "a") as f:
            f.write(f"{code} ({ad['ClusterId']:03d}.{ad['ProcId']:03d}.000) "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n...\n")
    except OSError:
        pass


# ------------------------------------------------------------------ the fake schedd

def schedd_main():
    idle_s = float(os.environ.get("CONDORFAKE_IDLE_SECONDS", "2"))
    run_s = float(os.environ.get("CONDORFAKE_MIN_RUN_SECONDS", "2"))
    slots = int(os.environ.get("CONDORFAKE_SLOTS", "8"))
    os.makedirs(spool("exit"), exist_ok=True)
    children = {}   # job id -> Popen
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(spool("schedd.pid.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(spool("schedd.pid.tmp"), spool("schedd.pid"))
    first = True
    while not stop:
        now = time.time()
        with Locked():
            q = load_queue()
            changed, done = False, []
            for ad in q:
                jid = job_id(ad)
                st = ad.get("JobStatus")
                if st == 3:   # removed: stop it, then leave the queue
                    p = children.pop(jid, None)
                    pid = ad.get("FakePid")
                    if pid:
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except OSError:
                            pass
                    if p:
                        p.wait()
                    ad.pop("FakePid", None)
                    try:
                        os.unlink(spool("exit", jid))
                    except OSError:
                        pass
                    ad["CompletionDate"] = 0
                    write_userlog(ad, "009", "Job was aborted.\n\tvia condor_rm (by user " + str(ad.get("Owner")) + ")")
                    done.append(ad)
                    changed = True
                elif st == 2:
                    exitfile = spool("exit", jid)
                    p = children.get(jid)
                    if p is not None and p.poll() is None:
                        continue
                    if p is None and first and not os.path.exists(exitfile):
                        # The fake schedd restarted under a running job: like an eviction, back to idle.
                        pid = ad.pop("FakePid", None)
                        if pid:
                            try:
                                os.killpg(pid, signal.SIGKILL)
                            except OSError:
                                pass
                        ad["JobStatus"], ad["LastJobStatus"] = 1, 2
                        ad["EnteredCurrentStatus"] = int(now)
                        ad.pop("RemoteHost", None)
                        changed = True
                        continue
                    start = ad.get("JobCurrentStartDate", now)
                    min_run = float(ad.get("FakeMinRunSeconds", run_s)) if is_num(ad.get("FakeMinRunSeconds", 0)) else run_s
                    if now - start < min_run:
                        continue
                    code = None
                    try:
                        with open(exitfile) as f:
                            code = int(f.read().strip())
                    except (OSError, ValueError):
                        code = p.returncode if p is not None else None
                    children.pop(jid, None)
                    try:
                        os.unlink(exitfile)
                    except OSError:
                        pass
                    ad.pop("FakePid", None)
                    ad.pop("RemoteHost", None)
                    ad["LastJobStatus"], ad["JobStatus"] = 2, 4
                    ad["EnteredCurrentStatus"] = ad["CompletionDate"] = int(now)
                    ad["RemoteWallClockTime"] = float(int(now) - start)
                    if code is not None and code >= 128 + 1 and code <= 128 + 64:
                        ad["ExitBySignal"], ad["ExitSignal"] = True, code - 128
                    else:
                        ad["ExitBySignal"], ad["ExitCode"] = False, code if code is not None else -1
                    write_userlog(ad, "005", f"Job terminated.\n\t(1) Normal termination (return value "
                                             f"{ad.get('ExitCode', -1)})")
                    done.append(ad)
                    changed = True
            running = sum(1 for ad in q if ad.get("JobStatus") == 2)
            for ad in sorted(q, key=lambda a: (a.get("ClusterId", 0), a.get("ProcId", 0))):
                if running >= slots:
                    break
                if ad.get("JobStatus") != 1:
                    continue
                idle = ad.get("FakeIdleSeconds", idle_s)
                idle = float(idle) if is_num(idle) else idle_s
                if now - ad.get("EnteredCurrentStatus", ad.get("QDate", now)) < idle:
                    continue
                start_job(ad, children, now)
                running += 1
                changed = True
            if changed:
                gone = {id(ad) for ad in done}
                remaining = [ad for ad in q if id(ad) not in gone]
                append_history(done)
                save_queue(remaining)
        first = False
        time.sleep(0.2)
    return 0


def start_job(ad, children, now):
    jid = job_id(ad)
    exitfile = spool("exit", jid)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"), "USER": str(ad.get("Owner", "")),
           "_CONDOR_SCRATCH_DIR": str(ad.get("Iwd")), "_CONDOR_JOB_IWD": str(ad.get("Iwd")),
           "_CONDOR_JOB_AD": spool("exit", jid + ".ad"), "CONDOR_FAKE": "1"}
    env.update(parse_environment('"' + str(ad.get("Environment", "")).replace('"', '""') + '"')
               if ad.get("Environment") else {})
    ad["JobStatus"], ad["LastJobStatus"] = 2, 1
    ad["EnteredCurrentStatus"] = ad["JobCurrentStartDate"] = int(now)
    ad["JobStartDate"] = ad.get("JobStartDate", int(now))
    ad["NumJobStarts"] = int(ad.get("NumJobStarts", 0)) + 1
    ad["RemoteHost"] = f"slot1@{HOST}"
    try:
        with open(env["_CONDOR_JOB_AD"], "w") as f:
            for k in sorted(ad, key=str.lower):
                f.write(f"{k} = {unparse_value(ad[k])}\n")
    except OSError:
        pass
    argv = [str(ad.get("Cmd"))] + parse_arguments('"' + str(ad.get("Arguments", "")) + '"')
    wrapper = '"$@" <"$APF_FAKE_IN"; echo $? >"$APF_FAKE_EXIT"'
    env["APF_FAKE_IN"], env["APF_FAKE_EXIT"] = str(ad.get("In", "/dev/null")), exitfile
    try:
        out = open(str(ad.get("Out", "/dev/null")), "ab")
        err = out if ad.get("Err") == ad.get("Out") else open(str(ad.get("Err", "/dev/null")), "ab")
    except OSError as e:
        out = err = None
        with open(exitfile, "w") as f:
            f.write("1")
        sys.stderr.write(f"condorfake schedd: {jid}: cannot open output: {e}\n")
        return
    try:
        p = subprocess.Popen(["/bin/sh", "-c", wrapper, "condor_exec"] + argv, cwd=str(ad.get("Iwd", "/")),
                             env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        ad["FakePid"] = p.pid
        children[jid] = p
    except OSError as e:
        with open(exitfile, "w") as f:
            f.write("1")
        sys.stderr.write(f"condorfake schedd: {jid}: cannot start: {e}\n")
    finally:
        out.close()
        if err is not out:
            err.close()
    write_userlog(ad, "001", f"Job executing on host: <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP&sock=startd_fake>")


# ------------------------------------------------------------------ entry

def main():
    tool = os.path.basename(sys.argv[0])
    argv = sys.argv[1:]
    if tool in ("condorfake.py", "condorfake") and argv:
        tool, argv = argv[0], argv[1:]
    if tool == "schedd":
        return schedd_main()
    if "-version" in argv or tool == "condor_version":
        print(VERSION)
        print(PLATFORM)
        return 0
    try:
        if tool == "condor_submit":
            return cmd_submit(argv)
        if tool == "condor_q":
            return cmd_q(argv)
        if tool == "condor_history":
            return cmd_history(argv)
        if tool == "condor_rm":
            return cmd_rm(argv)
    except UsageError as e:
        sys.stderr.write(f"{tool}: {e}\n")
        return 1
    sys.stderr.write(f"condorfake: unknown command {tool}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
