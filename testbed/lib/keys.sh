# shellcheck shell=bash
# Test user, client keys, host keys, known_hosts, ssh_config and the env file.
# Keys are generated once and kept across `tb down` (only `tb clean` removes
# them), so known_hosts files that tests copy stay valid between runs.

TB_KEYS=(id_ed25519 id_ecdsa id_ecdsa_pem id_rsa id_ed25519_pass id_unauthorized)
TB_AUTHORIZED=(id_ed25519 id_ecdsa id_ecdsa_pem id_rsa id_ed25519_pass)
TB_HOSTS=(main jump "${TB_NETNS_HOSTS[@]}")    # every sshd we run

ensure_user() {
    if ! id "$TB_USER" >/dev/null 2>&1; then
        useradd -m -s /bin/bash "$TB_USER"
        log "created user $TB_USER (uid $(id -u "$TB_USER"))"
    fi
    # useradd leaves '!' (locked); sshd with UsePAM no refuses locked accounts.
    usermod -p '*' "$TB_USER"
    local home; home=$(getent passwd "$TB_USER" | cut -d: -f6)
    # StrictModes: home must not be group/world writable.
    chmod go-w "$home"
    install -d -m 0700 -o "$TB_USER" -g "$(id -gn "$TB_USER")" "$home/.ssh"
}

# ssh-keygen refuses to overwrite and would prompt, so generate into a temp
# name and move into place: an interrupted run never leaves half a key pair.
gen_key() {   # gen_key PATH ssh-keygen-args...
    local path=$1; shift
    if [[ -s $path && -s $path.pub ]]; then return 0; fi
    # Private key without .pub: derive it if the key has no passphrase.
    if [[ -s $path ]] && ssh-keygen -y -P '' -f "$path" >"$path.pub" 2>/dev/null; then
        chmod 0644 "$path.pub"
        return 0
    fi
    rm -f "$path" "$path.pub"
    local tmp; tmp=$(mktemp -u "$path.tmp.XXXXXX")
    ssh-keygen -q "$@" -f "$tmp" </dev/null
    chmod 0600 "$tmp"; chmod 0644 "$tmp.pub"
    mv -f "$tmp.pub" "$path.pub"
    mv -f "$tmp" "$path"
}

ensure_client_keys() {
    local k=$TB_DIR/keys
    gen_key "$k/id_ed25519"      -t ed25519 -N '' -C apftest-ed25519
    gen_key "$k/id_ecdsa"        -t ecdsa -b 256 -N '' -C apftest-ecdsa256
    gen_key "$k/id_ecdsa_pem"    -t ecdsa -b 384 -m PEM -N '' -C apftest-ecdsa384-pem
    gen_key "$k/id_rsa"          -t rsa -b 3072 -N '' -C apftest-rsa3072
    gen_key "$k/id_unauthorized" -t ed25519 -N '' -C apftest-unauthorized
    # The passphrase and its key belong together: regenerate both if either
    # is missing.
    if [[ ! -s $k/passphrase || ! -s $k/id_ed25519_pass || ! -s $k/id_ed25519_pass.pub ]]; then
        rm -f "$k/id_ed25519_pass" "$k/id_ed25519_pass.pub"
        local pass
        pass=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
        printf '%s' "$pass" | write_atomic "$k/passphrase" 0600
        gen_key "$k/id_ed25519_pass" -t ed25519 -N "$pass" -C apftest-ed25519-pass
    fi
    chmod 0600 "$k"/id_* "$k/passphrase"
    chmod 0644 "$k"/id_*.pub
}

ensure_authorized_keys() {
    local home n; home=$(getent passwd "$TB_USER" | cut -d: -f6)
    local grp; grp=$(id -gn "$TB_USER")
    # The file is fully managed by tb: exactly our authorized public keys. Owner and mode are set on the temporary
    # file before the rename: a root-owned authorized_keys, even for a moment, makes sshd refuse every key.
    local f=$home/.ssh/authorized_keys tmp
    tmp=$(mktemp "$f.XXXXXX")
    for n in "${TB_AUTHORIZED[@]}"; do cat "$TB_DIR/keys/$n.pub"; done >"$tmp"
    chmod 0600 "$tmp"
    chown "$TB_USER:$grp" "$tmp"
    mv -f "$tmp" "$f"
}

ensure_host_keys() {
    local h d
    for h in "${TB_HOSTS[@]}"; do
        d=$TB_DIR/hostkeys/$h
        install -d -m 0700 "$d"
        gen_key "$d/ssh_host_ed25519_key" -t ed25519 -N '' -C "$h"
        gen_key "$d/ssh_host_ecdsa_key"   -t ecdsa -b 256 -N '' -C "$h"
        gen_key "$d/ssh_host_rsa_key"     -t rsa -b 3072 -N '' -C "$h"
    done
}

# The known_hosts pattern of each sshd. Port 22 takes no brackets.
host_pattern() {
    case $1 in
        main) echo "[$TB_SSH_HOST]:$TB_MAIN_PORT" ;;
        jump) echo "[$TB_SSH_HOST]:$TB_JUMP_PORT" ;;
        apfh*) echo "$1,$(netns_addr "$1")" ;;
    esac
}

ensure_known_hosts() {
    local h t pat key kh=$TB_DIR/known_hosts
    local content=""
    for h in "${TB_HOSTS[@]}"; do
        pat=$(host_pattern "$h")
        for t in ed25519 ecdsa rsa; do
            read -r key <"$TB_DIR/hostkeys/$h/ssh_host_${t}_key.pub"
            key=$(cut -d' ' -f1,2 <<<"$key")
            content+="$pat $key"$'\n'
        done
    done
    # The main sshd also listens on [::1]:2222 (if the machine has IPv6).
    for t in ed25519 ecdsa rsa; do
        read -r key <"$TB_DIR/hostkeys/main/ssh_host_${t}_key.pub"
        key=$(cut -d' ' -f1,2 <<<"$key")
        content+="[$TB_SSH_HOST6]:$TB_MAIN_PORT $key"$'\n'
    done
    # Hashing uses random salts, so re-hash only when the plain file changes.
    if [[ ! -s $kh || $(<"$kh")$'\n' != "$content" || ! -s $kh.hashed ]]; then
        printf '%s' "$content" | write_atomic "$kh" 0644
        local tmp; tmp=$(mktemp "$TB_DIR/kh.XXXXXX")
        printf '%s' "$content" >"$tmp"
        # -H warns on stderr that the .old copy holds plain names; we delete it.
        local out
        out=$(ssh-keygen -q -H -f "$tmp" 2>&1) || die "ssh-keygen -H failed: $out"
        rm -f "$tmp.old"
        chmod 0644 "$tmp"
        mv -f "$tmp" "$kh.hashed"
    fi
}

# An ssh_config for manual checks and for ProxyJump (ssh passes -F on to the
# jump-host ssh, but not -o options). Host aliases:
#   apf-main, apf-main6 ([::1]:2222), apf-jump, apfhN (10.251.N.2:22),
#   apfhN-lo (the namespace's own 127.0.0.1:22, reached through apfhN).
ensure_ssh_config() {
    local h
    {
        echo "# generated by testbed/tb; regenerated on every 'tb up'"
        echo "Host apf-main"
        echo "  HostName $TB_SSH_HOST"
        echo "  Port $TB_MAIN_PORT"
        echo "Host apf-main6"
        echo "  HostName $TB_SSH_HOST6"
        echo "  Port $TB_MAIN_PORT"
        echo "Host apf-jump"
        echo "  HostName $TB_SSH_HOST"
        echo "  Port $TB_JUMP_PORT"
        for h in "${TB_NETNS_HOSTS[@]}"; do
            echo "Host $h"
            echo "  HostName $(netns_addr "$h")"
            echo "  Port 22"
            echo "Host $h-lo"
            echo "  HostName 127.0.0.1"
            echo "  Port 22"
            echo "  HostKeyAlias $h"
            echo "  ProxyJump $h"
        done
        echo "Host *"
        echo "  User $TB_USER"
        echo "  IdentityFile $TB_DIR/keys/id_ed25519"
        echo "  IdentitiesOnly yes"
        echo "  BatchMode yes"
        echo "  UserKnownHostsFile $TB_DIR/known_hosts"
        echo "  GlobalKnownHostsFile /dev/null"
        echo "  StrictHostKeyChecking yes"
        echo "  ConnectTimeout 5"
        echo "  LogLevel ERROR"
    } | write_atomic "$TB_DIR/ssh_config" 0644
}

# Everything that `up` of any component needs first.
ensure_prereqs() {
    local c
    for c in "$SSHD" ssh ssh-keygen ip useradd unshare; do
        command -v "$c" >/dev/null || die "$c not found; run: testbed/tb install all"
    done
    ensure_state_dir
    ensure_user
    ensure_client_keys
    ensure_authorized_keys
    ensure_host_keys
    ensure_known_hosts
    ensure_ssh_config
}

# $DIR/env: KEY=value lines, no quotes, no spaces, no comments (read by
# `source` and by a Swift parser). SSH lines only while the ssh component is
# up, netns lines only while the netns component is up; no file when nothing
# is up.
write_env() {
    local c k=$TB_DIR/keys
    local -a up=()
    for c in "${TB_COMPONENTS[@]}"; do component_up "$c" && up+=("$c"); done
    if ((${#up[@]} == 0)); then
        rm -f "$TB_DIR/env"
        return 0
    fi
    {
        echo "APF_TB_DIR=$TB_DIR"
        echo "APF_TB_USER=$TB_USER"
        echo "APF_TB_KNOWN_HOSTS=$TB_DIR/known_hosts"
        echo "APF_TB_KNOWN_HOSTS_HASHED=$TB_DIR/known_hosts.hashed"
        echo "APF_TB_KEY_ED25519=$k/id_ed25519"
        echo "APF_TB_KEY_ECDSA=$k/id_ecdsa"
        echo "APF_TB_KEY_ECDSA_PEM=$k/id_ecdsa_pem"
        echo "APF_TB_KEY_RSA=$k/id_rsa"
        echo "APF_TB_KEY_ED25519_PASS=$k/id_ed25519_pass"
        echo "APF_TB_KEY_PASSPHRASE_FILE=$k/passphrase"
        echo "APF_TB_KEY_UNAUTHORIZED=$k/id_unauthorized"
        echo "APF_TB_HOSTKEYS_DIR=$TB_DIR/hostkeys"
        echo "APF_TB_SSH_CONFIG=$TB_DIR/ssh_config"
        for c in "${up[@]}"; do "${c}_env"; done
    } | write_atomic "$TB_DIR/env" 0644
}
