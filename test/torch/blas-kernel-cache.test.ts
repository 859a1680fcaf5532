// The kept BLAS kernel choice (src/torch/blas-kernel.ts) is applied only when this CPU can run it and its own
// trial computed correct results: a choice planted or edited by hand (a kernel for another CPU kills the process
// with SIGILL) is measured again instead. Pure functions: no addon needed.
import { describe, expect, it } from 'vitest';

import { applicable, candidateKernels } from '../../src/torch/blas-kernel.js';

const AVX2 = 'fpu sse sse2 avx fma avx2';
const AVX512 = `${AVX2} avx512f avx512dq avx512bw avx512vl`;
const trial = (kernel: string, correct: boolean) => ({
  kernel,
  ran: kernel,
  correct,
  gflops: 100,
  maxRelativeErrorFloat32: 0,
  maxRelativeErrorFloat64: 0,
  worstCase: '',
});

describe('a kept BLAS kernel choice', () => {
  it('the kernels tried are those the flags allow', () => {
    expect(candidateKernels(AVX2)).toEqual(['default', 'Haswell', 'Sandybridge']);
    expect(candidateKernels(AVX512)).toEqual(['default', 'SkylakeX', 'Haswell', 'Sandybridge']);
  });

  it('is applied when it is none, or a kernel of this CPU whose trial was correct', () => {
    expect(applicable({ choice: null, trials: [] }, AVX2)).toBe(true);
    expect(applicable({ choice: 'Haswell', trials: [trial('default', true), trial('Haswell', true)] }, AVX2)).toBe(true);
  });

  it('is not applied when this CPU cannot run it (an entry planted or made on another machine)', () => {
    expect(applicable({ choice: 'SkylakeX', trials: [trial('SkylakeX', true)] }, AVX2)).toBe(false);
    expect(applicable({ choice: 'NotAKernel', trials: [trial('NotAKernel', true)] }, AVX512)).toBe(false);
  });

  it('is not applied when no correct trial of it is recorded', () => {
    expect(applicable({ choice: 'Haswell', trials: [trial('default', true)] }, AVX2)).toBe(false);
    expect(applicable({ choice: 'Haswell', trials: [trial('Haswell', false)] }, AVX2)).toBe(false);
  });
});
