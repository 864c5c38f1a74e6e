/**
 * Placeholder for `deno task e2e`: the remote-daemon suite (containerd reached
 * only over TCP through socat, capture files in a shared WFE_IO_DIR, on a Lima
 * VM or a network namespace standing in for one) arrives with its own issue.
 *
 * @module
 */

console.log(
  "deno task e2e: not implemented yet. It will run tests/e2e/ against containerd reached over\n" +
    "TCP through a socat proxy (a Lima VM when limactl exists, else a network namespace made by\n" +
    "the harness), with stdout/stderr capture files in a shared WFE_IO_DIR.",
);
