/**
 * Whose state a new generation takes: the member that holds one and is furthest along (an
 * all-reduce can complete on some ranks and fail on others, so the members that applied a step
 * roll the others forward); ties go to the lowest rank. -1 when no member holds a state yet.
 */
export function mostAdvanced<T extends { has: boolean }>(all: readonly T[], ahead: (a: T, b: T) => boolean): number {
  let source = -1;
  all.forEach((s, r) => {
    if (s.has && (source < 0 || ahead(s, all[source]))) source = r;
  });
  return source;
}
