// The int8 variants' agreement with fp32, read from each model folder's model.json (variants.int8): the figures
// the exporter measured on its validation photos and texts (scripts/export_model.py --precision int8). The bench
// reports them beside the speed so that a reader sees what the int8 rows cost in answers.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { AgreementRow } from '../results.js';

interface TextFigures {
  photos: number;
  top1_agreement: number;
  top5_overlap: number;
  max_abs_delta_p: number;
}

/** The agreement of `dir`'s int8 variant, or undefined when the folder has none. */
export function int8Agreement(label: string, dir: string): AgreementRow | undefined {
  const file = path.join(dir, 'model.json');
  if (!existsSync(file)) return undefined;
  const variant = (JSON.parse(readFileSync(file, 'utf8')) as { variants?: { int8?: Record<string, unknown> } }).variants?.int8;
  if (!variant) return undefined;
  const agreement = variant.agreement as { by_text: Record<string, TextFigures>; all_texts: { accuracy_fp32?: number; accuracy_int8?: number } };
  const texts = Object.values(agreement.by_text);
  return {
    model: label,
    photos: texts[0]?.photos ?? 0,
    texts: texts.length,
    top1_agreement_worst: Math.min(...texts.map((t) => t.top1_agreement)),
    top5_overlap_worst: Math.min(...texts.map((t) => t.top5_overlap)),
    max_abs_delta_p: Math.max(...texts.map((t) => t.max_abs_delta_p)),
    accuracy_fp32: agreement.all_texts.accuracy_fp32,
    accuracy_int8: agreement.all_texts.accuracy_int8,
    threshold: (variant.threshold as { min_top1_agreement: number }).min_top1_agreement,
    passed: variant.passed === true,
  };
}
