# apf-agent: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
.PHONY: build test demo bench-ssh testbed-up testbed-down

build:
	bash scripts/swift.sh build

## Installs what it needs, starts the testbed (real sshd, network-namespace hosts), runs every test, stops it again.
test:
	bash scripts/test.sh

## Starts the testbed and drives it through the agent's own SSH transport.
demo:
	bash scripts/demo.sh

## P1: pooled libssh2 channels vs OpenSSH ControlMaster vs one ssh per command (not a test).
bench-ssh:
	bash scripts/bench.sh ssh

testbed-up:
	testbed/tb install all && testbed/tb up all

testbed-down:
	testbed/tb down all
