/** The largest uint64: the bound of config.json's u64 fields, seccomp values and systemd's `t`. */
export const U64_MAX = (1n << 64n) - 1n;
