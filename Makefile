# apf-agent: the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
.PHONY: build test demo bench-ssh bench-submit bench-agent testbed-up testbed-down

build:
	bash scripts/swift.sh build

## Installs what it needs, starts the testbed (real sshd, network-namespace hosts), runs every test, stops it again.
test:
	bash scripts/test.sh

## The agent end to end: the testbed's sshd + real SLURM as a cluster, a tenant, SSH profile, pinned target and a
## queue with a demand of 20 made with the real CLI, the daemon submitting pilots (squeue shows them), status, SIGTERM.
demo:
	bash scripts/demo.sh

## P1: pooled libssh2 channels vs OpenSSH ControlMaster vs one ssh per command (not a test).
bench-ssh:
	bash scripts/bench.sh ssh

## P2: 1,000 pilots into the testbed's real SLURM over SSH vs the floor, a per-job loop and one ssh per job;
## P3: parsing 100,000 squeue and sacct lines (not tests).
bench-submit:
	bash scripts/bench.sh submit

## P4: 1,000 queues on simulated targets (CPU per factory cycle, RSS); P5: start-up with 100,000 journal rows,
## 10,000 in doubt (not tests; no testbed needed).
bench-agent:
	bash scripts/bench.sh agent

testbed-up:
	testbed/tb install all && testbed/tb up all

testbed-down:
	testbed/tb down all
