// Ranks files by BM25 over identifiers against what the user is doing (a question, the open files), to choose
// what enters the context when the workspace is larger than the budget.

const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]{2,}/g;

/** Identifiers, also split at camelCase and snake_case boundaries, lower-cased. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IDENTIFIER)) {
    const word = m[0];
    out.push(word.toLowerCase());
    const parts = word.split(/_|(?<=[a-z0-9])(?=[A-Z])/).filter((p) => p.length > 2);
    if (parts.length > 1) for (const p of parts) out.push(p.toLowerCase());
  }
  return out;
}

export function bm25Scores(documents: readonly string[], query: string, k1 = 1.2, b = 0.75): number[] {
  const queryTerms = [...new Set(terms(query))];
  if (queryTerms.length === 0 || documents.length === 0) return documents.map(() => 0);
  const docTerms = documents.map((d) => {
    const counts = new Map<string, number>();
    for (const t of terms(d)) counts.set(t, (counts.get(t) ?? 0) + 1);
    return counts;
  });
  const lengths = docTerms.map((c) => [...c.values()].reduce((a, x) => a + x, 0));
  const avg = lengths.reduce((a, x) => a + x, 0) / documents.length || 1;
  const idf = new Map(queryTerms.map((t) => {
    const n = docTerms.filter((c) => c.has(t)).length;
    return [t, Math.log(1 + (documents.length - n + 0.5) / (n + 0.5))];
  }));
  return docTerms.map((counts, i) => {
    let score = 0;
    for (const t of queryTerms) {
      const f = counts.get(t) ?? 0;
      if (f) score += idf.get(t)! * ((f * (k1 + 1)) / (f + k1 * (1 - b + (b * lengths[i]!) / avg)));
    }
    return score;
  });
}
