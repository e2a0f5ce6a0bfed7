/// The remote helper: a small POSIX `sh` program (plus POSIX `awk`) that runs several batch commands in one SSH round
/// trip and frames their results, so login banners, MOTDs and shell start-up noise cannot be mistaken for output,
/// and every command's real exit status comes back (LESSONS §8).
///
/// It is installed as `~/.apf-agent/helper-<sha256 prefix>.sh` over SFTP; a new version is a new file, and a
/// missing or damaged file is simply uploaded again. Requests are argument vectors (never a shell string); nothing
/// in it is site-specific.
enum HelperScript {
    static let version = 1

    static let text = #"""
#!/bin/sh
# apf-agent remote helper, protocol APF1 (version 1). Installed by apf-agent as ~/.apf-agent/helper-<sha256>.sh;
# never edit it in place. Usage: sh helper.sh APF1 NONCE OP...
#   x  ARGC ARGV...        run ARGV, stdin /dev/null
#   xi ARGC ARGV...        run ARGV with this program's stdin
#   w  PATH MODE           write this program's stdin to PATH atomically (temporary file, chmod MODE, mv)
#   a  REF PRESENT CHUNK ARGC ARGV... IDC IDS...
#        run ARGV for those IDS that are absent from op REF's stdout (IDC "-": IDS are this program's stdin, one a
#        line). PRESENT reads the present IDs: "f1|" first |-separated field, "f1_" first blank-separated field,
#        "sgexml" JB_job_number[.task] of each job_list, "condorjson" ClusterId.ProcId of each ad.
#        CHUNK "each": one run per distinct job number (text before the first . or _), @ID@ in ARGV replaced;
#        CHUNK N: runs of at most N absent IDs, with @IDS@ (comma list), @MAJORS@ (distinct job numbers, comma
#        list), @N@ (count) and @CONDORIDS@ (a ClassAd disjunction (ClusterId==C&&ProcId==P)||...) replaced. Outputs of all runs are concatenated; the status is the last non-zero one.
# Output: "APF1 <len>\n", a JSON header of <len> bytes {"v":1,"nonce":N,"ops":[{"rc":R,"out":B,"err":B},...]},
# then each op's stdout and stderr bytes. Exit status: 0 frame written, 2 bad request, 3 no temporary directory.
set -u
umask 077
bad() { echo "apf-helper: bad request: $1" >&2; exit 2; }
[ "${1:-}" = APF1 ] || bad "protocol APF1 expected"
[ $# -ge 2 ] || bad "nonce missing"
nonce=$2
case $nonce in *[!A-Za-z0-9]*|'') bad "nonce must be alphanumeric" ;; esac
shift 2
d=$(mktemp -d "${TMPDIR:-/tmp}/apf-helper.XXXXXX" 2>/dev/null) || { echo "apf-helper: cannot create a temporary directory" >&2; exit 3; }
trap 'rm -rf "$d"' EXIT
trap 'exit 143' HUP INT TERM

need() { [ "$1" -ge "$2" ] 2>/dev/null || bad "$3"; }
n=0
while [ $# -gt 0 ]; do
    op=$1; shift
    : > "$d/$n.args"
    case $op in
    x|xi)
        need $# 1 "$op: ARGC missing"; c=$1; shift; need $# "$c" "$op: fewer arguments than ARGC"
        while [ "$c" -gt 0 ]; do printf '%s\n' "$1" >> "$d/$n.args"; shift; c=$((c - 1)); done ;;
    w)
        need $# 2 "w: PATH MODE expected"; printf '%s\n%s\n' "$1" "$2" > "$d/$n.args"; shift 2 ;;
    a)
        need $# 4 "a: REF PRESENT CHUNK ARGC expected"; printf '%s\n%s\n%s\n' "$1" "$2" "$3" > "$d/$n.meta"; shift 3
        c=$1; shift; need $# "$c" "a: fewer arguments than ARGC"
        while [ "$c" -gt 0 ]; do printf '%s\n' "$1" >> "$d/$n.args"; shift; c=$((c - 1)); done
        need $# 1 "a: IDC missing"; c=$1; shift
        if [ "$c" = - ]; then
            cat > "$d/$n.ids"
        else
            need $# "$c" "a: fewer IDs than IDC"; : > "$d/$n.ids"
            while [ "$c" -gt 0 ]; do printf '%s\n' "$1" >> "$d/$n.ids"; shift; c=$((c - 1)); done
        fi ;;
    *) bad "unknown op '$op'" ;;
    esac
    printf '%s\n' "$op" > "$d/$n.op"
    n=$((n + 1))
done

# Replaces every @NAME@ in $a by $v (no subshell).
subst() { while :; do case $a in *"$1"*) a=${a%%"$1"*}$2${a#*"$1"} ;; *) break ;; esac; done; }

i=0
while [ $i -lt $n ]; do
    read -r op < "$d/$i.op"
    out=$d/$i.out
    err=$d/$i.err
    : > "$out"; : > "$err"
    rc=0
    case $op in
    x|xi)
        set --
        while IFS= read -r a; do set -- "$@" "$a"; done < "$d/$i.args"
        if [ "$op" = x ]; then "$@" < /dev/null > "$out" 2> "$err" || rc=$?; else "$@" > "$out" 2> "$err" || rc=$?; fi ;;
    w)
        { IFS= read -r path; IFS= read -r mode; } < "$d/$i.args"
        tmp="$path.apf-tmp.$$"
        if cat > "$tmp" 2> "$err" && chmod "$mode" "$tmp" 2>> "$err" && mv -f "$tmp" "$path" 2>> "$err"; then :; else rc=1; rm -f "$tmp"; fi ;;
    a)
        { IFS= read -r ref; IFS= read -r present; IFS= read -r chunk; } < "$d/$i.meta"
        case $present in
        'f1|') awk -F'|' '{ print $1 }' "$d/$ref.out" ;;
        f1_) awk '{ print $1 }' "$d/$ref.out" ;;
        sgexml) awk '
            function emit(job, task,   k, m, r, lo, hi, st, t) {
                if (task == "") { print job; return }
                m = split(task, parts, ",")
                for (k = 1; k <= m; k++) {
                    r = parts[k]; st = 1
                    if (index(r, ":")) { st = substr(r, index(r, ":") + 1) + 0; r = substr(r, 1, index(r, ":") - 1) }
                    if (index(r, "-")) { lo = substr(r, 1, index(r, "-") - 1) + 0; hi = substr(r, index(r, "-") + 1) + 0 }
                    else { lo = r + 0; hi = lo }
                    if (st < 1) st = 1
                    for (t = lo; t <= hi; t += st) print job "." t
                }
            }
            /<JB_job_number>/ { s = $0; sub(/.*<JB_job_number>/, "", s); sub(/<.*/, "", s); job = s; task = "" }
            /<tasks>/ { s = $0; sub(/.*<tasks>/, "", s); sub(/<.*/, "", s); task = s }
            /<\/job_list>/ { if (job != "") emit(job, task); job = ""; task = "" }' "$d/$ref.out" ;;
        condorjson) awk '
            /"ClusterId":/ { s = $0; sub(/.*"ClusterId":/, "", s); gsub(/[^0-9]/, "", s); c = s }
            /"ProcId":/ { s = $0; sub(/.*"ProcId":/, "", s); gsub(/[^0-9]/, "", s); p = s }
            /^[ \t]*}/ { if (c != "") print c "." p; c = ""; p = "" }' "$d/$ref.out" ;;
        *) echo "apf-helper: unknown PRESENT '$present'" >&2; exit 2 ;;
        esac > "$d/$i.present"
        # (getline from a named file, not NR == FNR: an empty listing must not swallow the IDs.)
        awk -v pf="$d/$i.present" 'BEGIN { while ((getline l < pf) > 0) p[l] = 1 } $0 != "" && !($0 in p) && !seen[$0]++' \
            "$d/$i.ids" > "$d/$i.absent"
        if [ "$chunk" = each ]; then
            awk '{ m = $0; sub(/[._].*/, "", m); if (!(m in s)) { s[m] = 1; print m } }' "$d/$i.absent" > "$d/$i.runs"
            while IFS= read -r id; do
                set --
                while IFS= read -r a; do subst @ID@ "$id"; set -- "$@" "$a"; done < "$d/$i.args"
                "$@" < /dev/null >> "$out" 2>> "$err" || rc=$?
            done < "$d/$i.runs"
        else
            need "$chunk" 1 "a: CHUNK must be each or a positive number"
            awk -v n="$chunk" '
                { ids = ids (c ? "," : "") $0; m = $0; sub(/[._].*/, "", m); p = $0; sub(/^[^.]*\.?/, "", p)
                  if (!(m in s)) { s[m] = 1; maj = maj (mc ? "," : "") m; mc++ }
                  cad = cad (c ? "||" : "") "(ClusterId==" m "&&ProcId==" (p == "" ? 0 : p) ")"
                  c++
                  if (c == n) { print ids, maj, c, cad; ids = ""; maj = ""; cad = ""; c = 0; mc = 0; split("", s) } }
                END { if (c) print ids, maj, c, cad }' "$d/$i.absent" > "$d/$i.runs"
            while read -r ids majors count cads; do
                set --
                while IFS= read -r a; do
                    subst @IDS@ "$ids"; subst @MAJORS@ "$majors"; subst @N@ "$count"; subst @CONDORIDS@ "$cads"
                    set -- "$@" "$a"
                done < "$d/$i.args"
                "$@" < /dev/null >> "$out" 2>> "$err" || rc=$?
            done < "$d/$i.runs"
        fi ;;
    esac
    printf '%s\n' "$rc" > "$d/$i.rc"
    i=$((i + 1))
done

hdr="{\"v\":1,\"nonce\":\"$nonce\",\"ops\":["
sep=
i=0
while [ $i -lt $n ]; do
    read -r rc < "$d/$i.rc"
    o=$(wc -c < "$d/$i.out")
    e=$(wc -c < "$d/$i.err")
    hdr="$hdr$sep{\"rc\":$rc,\"out\":$((o + 0)),\"err\":$((e + 0))}"
    sep=,
    i=$((i + 1))
done
hdr="$hdr]}"
printf 'APF1 %s\n%s' "${#hdr}" "$hdr"
i=0
while [ $i -lt $n ]; do cat "$d/$i.out" "$d/$i.err"; i=$((i + 1)); done
exit 0
"""#
}
