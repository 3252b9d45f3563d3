import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (durations measured on this project's CI machine), so
 * that two workers finish together instead of one waiting on a long file started last. A fresh clone
 * has no timings cached for vitest to sort by; the rest keep vitest's own order.
 */
const LONGEST_FIRST = [
  'test/integration/drill-suite.test.ts',
  'test/integration/deployment-lifecycle.test.ts',
  'test/integration/nested-rotation.test.ts',
  'test/integration/ca-rotation.test.ts',
];

function rank(spec: TestSpecification): number {
  const index = LONGEST_FIRST.findIndex((file) => spec.moduleId.endsWith(file));
  return index < 0 ? LONGEST_FIRST.length : index;
}

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return sorted
      .map((spec, order) => ({ spec, order }))
      .sort((a, b) => rank(a.spec) - rank(b.spec) || a.order - b.order)
      .map(({ spec }) => spec);
  }
}
