# shellcheck shell=bash
# gridtools: the command-line tools X.509 tests use as independent references (no daemon): openssl (test CAs,
# `openssl verify -allow_proxy_certs`) and voms-clients (voms-proxy-fake, a real VOMS attribute-certificate maker,
# used as a configured renewal command). Up = installed.

gridtools_packages() { echo openssl voms-clients; }
gridtools_is_up() { command -v openssl >/dev/null 2>&1 && command -v voms-proxy-fake >/dev/null 2>&1; }
gridtools_up() { gridtools_is_up || die "gridtools: openssl or voms-proxy-fake missing; run: testbed/tb install gridtools"; }
gridtools_down() { :; }
gridtools_status() {
    if gridtools_is_up; then
        echo "  $(openssl version | cut -d' ' -f1,2)  voms-proxy-fake $(command -v voms-proxy-fake)"
    else
        echo "  not installed"
    fi
}
gridtools_env() {
    echo "APF_TB_OPENSSL=$(command -v openssl)"
    echo "APF_TB_VOMS_PROXY_FAKE=$(command -v voms-proxy-fake)"
}
