// How long a peer a test starts may live: until SIGTERM, and with `--exit-with-parent` no longer
// than the process that started it, even when that one dies by SIGKILL.
export function stopWithParent(exitWithParent) {
  if (exitWithParent) {
    const parent = process.ppid;
    // Orphans are re-parented (to init or a subreaper), which changes ppid.
    setInterval(() => {
      if (process.ppid !== parent) process.exit(0);
    }, 500).unref();
  }
  process.on("SIGTERM", () => process.exit(0));
}
