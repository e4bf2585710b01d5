// How a byte count is written for people: the status bar, the memory view and the command line all say it so.

/** 1536 -> "1.5 KB"; binary units, one decimal above bytes. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let n = Math.max(0, bytes);
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  // 1023.96 MB would print as "1024.0 MB": carry into the next unit instead.
  if (i > 0 && i < units.length - 1 && Number(n.toFixed(1)) >= 1024) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
