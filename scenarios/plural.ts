/** A count with its noun agreeing: "1 identity", "2 identities", "0 workloads". */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}
