// TextTokenizer (src/classifier/tokenizer.ts) with bert-base-uncased's vocabulary, against what the workshop's
// tokenizer gives:
// - the published golden vectors of huggingface/tokenizers and huggingface/transformers, and the
//   unverified ones, in ../shared/data/bert-base-uncased/tokenizer_golden.json;
// - fixtures/tokenizer_corpus.json: 186 texts and their ids from transformers' slow BertTokenizer with
//   bert-base-uncased's vocab.txt, made by hf_tokenize.py (see there how);
// - the live reference, when a Python with transformers is there (TOKENIZER_REFERENCE_PYTHON, default
//   /opt/torch2/bin/python): hf_tokenize.py on the corpus (it must give the fixture) and on random texts.
// The whole file needs ../shared/data/bert-base-uncased (never committed: a fresh clone has no ../shared): it is
// skipped, saying so, when it is absent. Padding, truncation, the cache and bad vocab files are in
// tokenizer.small-vocab.test.ts, long texts in tokenizer.long-texts.test.ts.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { TextTokenizer } from '../../src/classifier/tokenizer.js';
import { realIds } from './tokenizer.shared.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BERT = path.resolve(HERE, '..', '..', '..', 'shared', 'data', 'bert-base-uncased');
const BERT_VOCAB = path.join(BERT, 'vocab.txt');
const GOLDEN = path.join(BERT, 'tokenizer_golden.json');
const HAS_BERT = existsSync(BERT_VOCAB) && existsSync(GOLDEN);
const NO_BERT = `../shared/data/bert-base-uncased is absent (${BERT}): the checks against bert-base-uncased's vocabulary are skipped`;
const SCRIPT = path.join(HERE, 'hf_tokenize.py');
const FIXTURE = path.join(HERE, 'fixtures', 'tokenizer_corpus.json');
const REFERENCE_PYTHON = process.env.TOKENIZER_REFERENCE_PYTHON || '/opt/torch2/bin/python';
const FUZZ = { count: 500, seed: 20261127 };

if (!HAS_BERT) console.warn(`tokenizer.bert-base-uncased.test.ts: ${NO_BERT}`);

interface ReferenceCase {
  name?: string;
  text: string;
  input_ids: number[];
  fast_input_ids?: number[];
  fast_error?: string;
}

interface Reference {
  transformers: string;
  tokenizers: string;
  python: string;
  unicode: string;
  slow: string;
  fast: string;
  vocab_sha256: string;
  max_length: number;
  disagreements: number;
  cases: ReferenceCase[];
}

/** Ids as text for failure messages: the first mismatch and its neighbourhood. */
function describeMismatch(text: string, want: number[], got: number[], tokens: string[]): string {
  const at = want.findIndex((id, i) => id !== got[i]);
  const i = at === -1 ? Math.min(want.length, got.length) : at;
  return (
    `${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}: first difference at token ${i}: ` +
    `expected ${JSON.stringify(want.slice(Math.max(0, i - 2), i + 3))}, got ${JSON.stringify(got.slice(Math.max(0, i - 2), i + 3))} ` +
    `(${tokens.slice(Math.max(0, i - 2), i + 3).join(' ')}); lengths ${want.length} and ${got.length}`
  );
}

// ------------------------------------------------------------------------------------------------------

describe.skipIf(!HAS_BERT)(`bert-base-uncased (${HAS_BERT ? BERT : NO_BERT})`, () => {
  let bert: TextTokenizer;
  let golden: {
    vocab_sha256: string;
    published: Record<string, unknown>[];
    derived_not_published: { cases: Record<string, { tokens: string[]; input_ids: number[]; attention_mask: number[] }> };
  };
  const vocab = () => readFileSync(BERT_VOCAB, 'utf8').split('\n');

  beforeAll(async () => {
    bert = await TextTokenizer.fromVocab(BERT_VOCAB);
    golden = JSON.parse(readFileSync(GOLDEN, 'utf8'));
  });

  it('is the vocabulary the golden vectors and the corpus were made with', () => {
    const sha = createHash('sha256').update(readFileSync(BERT_VOCAB)).digest('hex');
    expect(golden.vocab_sha256).toBe(sha);
    expect(JSON.parse(readFileSync(FIXTURE, 'utf8')).vocab_sha256).toBe(sha);
    expect(bert.vocabSize).toBe(30522);
    expect(bert.specialTokens).toEqual({
      pad: { token: '[PAD]', id: 0 },
      unk: { token: '[UNK]', id: 100 },
      cls: { token: '[CLS]', id: 101 },
      sep: { token: '[SEP]', id: 102 },
      mask: { token: '[MASK]', id: 103 },
    });
  });

  describe('published golden vectors', () => {
    const entry = (test: RegExp) => golden.published.find((p) => test.test(String((p.source as { test: string }).test)))!;

    it("huggingface/tokenizers' BertWordPieceTokenizer test: 'My name is John' (and 'pair')", async () => {
      const pair = entry(/^TestBertWordPieceTokenizer.test_basic_encode$/) as { input_ids: number[]; tokens: string[] };
      // The published encoding is of the pair ('My name is John', 'pair'); the model takes one text:
      // each of the two, encoded alone, is the published [CLS] A [SEP] and [CLS] B [SEP].
      const sepAt = pair.tokens.indexOf('[SEP]');
      const a = await bert.encode('My name is John');
      expect(realIds(a, 128, 0)).toEqual(pair.input_ids.slice(0, sepAt + 1));
      expect(a.tokens).toEqual(pair.tokens.slice(0, sepAt + 1));
      const b = await bert.encode('pair');
      expect(realIds(b, 128, 0)).toEqual([101, ...pair.input_ids.slice(sepAt + 1)]);
      const plain = entry(/add_special_tokens=False/) as { input_ids: number[] };
      expect([...realIds(a, 128, 0).slice(1, -1), ...realIds(b, 128, 0).slice(1, -1)]).toEqual(plain.input_ids);
    });

    it("transformers' test_offsets_with_special_characters: 'A, naïve [MASK] AllenNLP sentence.'", async () => {
      const e = entry(/test_offsets_with_special_characters/) as { tokens: string[]; input_ids_derived_by_vocab_lookup: number[] };
      const got = await bert.encode('A, naïve [MASK] AllenNLP sentence.');
      expect(got.tokens).toEqual(e.tokens);
      expect(realIds(got, 128, 0)).toEqual(e.input_ids_derived_by_vocab_lookup);
      // the published tokens' ids, looked up in vocab.txt (line numbers from 0)
      const lines = vocab();
      expect(e.tokens.map((t) => lines.indexOf(t))).toEqual(e.input_ids_derived_by_vocab_lookup);
    });

    it("transformers' BasicTokenizer tests: the words before WordPiece", async () => {
      const { basic_tokenizer_cases: cases } = entry(/basic tokenizer tests/) as { basic_tokenizer_cases: { input: string; tokens: string[] }[] };
      const inVocab = new Set(vocab());
      expect(cases.length).toBe(5);
      for (const { input, tokens } of cases) {
        const got = (await bert.encode(input)).tokens.slice(1, -1);
        // WordPiece's pieces joined back into words ([UNK]: a word with no pieces in the vocabulary)
        const words: string[] = [];
        for (const t of got) {
          if (t.startsWith('##')) words[words.length - 1] += t.slice(2);
          else words.push(t);
        }
        expect(words.length, JSON.stringify(input)).toBe(tokens.length);
        words.forEach((w, i) => {
          if (w === '[UNK]') expect(inVocab.has(tokens[i]), `${tokens[i]} is [UNK] but is in the vocabulary`).toBe(false);
          else expect(w, JSON.stringify(input)).toBe(tokens[i]);
        });
      }
    });
  });

  it('agrees with the unverified golden entries (confirmed with transformers 4.57.6 and 5.24.0: see the live test)', async () => {
    const cases = Object.entries(golden.derived_not_published.cases);
    expect(cases.length).toBe(7);
    for (const [text, want] of cases) {
      const e = await bert.encode(text);
      expect(realIds(e, 128, 0), text).toEqual(want.input_ids);
      expect(e.tokens).toEqual(want.tokens);
      expect(Array.from(e.attentionMask.slice(0, e.length), Number)).toEqual(want.attention_mask);
    }
  });

  it("gives the slow BertTokenizer's ids for the texts of the corpus (fixtures/tokenizer_corpus.json)", async () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Reference;
    expect(fixture.max_length).toBe(128);
    expect(fixture.cases.length).toBeGreaterThanOrEqual(100);
    const wrong: string[] = [];
    for (const c of fixture.cases) {
      const e = await bert.encode(c.text);
      const ids = realIds(e, 128, 0);
      if (JSON.stringify(ids) !== JSON.stringify(c.input_ids)) wrong.push(`${c.name}: ${describeMismatch(c.text, c.input_ids, ids, e.tokens)}`);
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  describe('the live reference: transformers, run by test/classifier/hf_tokenize.py', () => {
    let live: Reference | undefined;
    let why = '';

    beforeAll(async () => {
      const args = [SCRIPT, '--vocab', BERT_VOCAB, '--corpus', '--fuzz', String(FUZZ.count), '--seed', String(FUZZ.seed)];
      const result = await run(REFERENCE_PYTHON, args);
      if (result.error || result.status === 3) {
        why =
          `${REFERENCE_PYTHON} cannot run transformers (${result.error ?? result.stderr.trim().split('\n').pop()}): ` +
          'the live comparison is skipped (fixtures/tokenizer_corpus.json is still checked). Set TOKENIZER_REFERENCE_PYTHON ' +
          'to a Python with transformers (pip install transformers) to run it.';
        console.warn(`tokenizer.bert-base-uncased.test.ts: ${why}`);
        return;
      }
      if (result.status !== 0) throw new Error(`${REFERENCE_PYTHON} hf_tokenize.py failed (exit ${result.status}):\n${result.stderr}`);
      live = JSON.parse(result.stdout) as Reference;
    }, 180_000);

    it('gives the ids of the committed fixture for the corpus', (ctx) => {
      if (!live) return ctx.skip(why);
      const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Reference;
      const corpus = live.cases.filter((c) => !c.name?.startsWith('fuzz '));
      expect(corpus.map((c) => c.text)).toEqual(fixture.cases.map((c) => c.text));
      expect(live.vocab_sha256).toBe(fixture.vocab_sha256);
      corpus.forEach((c, i) => {
        expect(c.input_ids, c.name).toEqual(fixture.cases[i].input_ids);
      });
    });

    it('confirms the unverified golden entries (their texts are in the corpus)', (ctx) => {
      if (!live) return ctx.skip(why);
      const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')).derived_not_published.cases as Record<string, { input_ids: number[] }>;
      for (const [text, want] of Object.entries(golden)) {
        const c = live.cases.find((l) => l.text === text);
        expect(c, `${JSON.stringify(text)} is not in hf_tokenize.py's corpus`).toBeDefined();
        expect(c!.input_ids, text).toEqual(want.input_ids);
        expect(c!.fast_input_ids, `BertTokenizerFast on ${text}`).toBeUndefined();
      }
    });

    it(`gives the slow tokenizer's ids for the corpus and ${FUZZ.count} random texts`, async (ctx) => {
      if (!live) return ctx.skip(why);
      const nodeUnicode = process.versions.unicode ?? '0';
      const fuzzOk = compareVersions(live.unicode, nodeUnicode) <= 0;
      const cases = live.cases.filter((c) => fuzzOk || !c.name?.startsWith('fuzz '));
      const wrong: string[] = [];
      for (const c of cases) {
        const e = await bert.encode(c.text);
        const ids = realIds(e, 128, 0);
        if (JSON.stringify(ids) !== JSON.stringify(c.input_ids)) wrong.push(`${c.name}: ${describeMismatch(c.text, c.input_ids, ids, e.tokens)}`);
      }
      const fast = live.cases.filter((c) => c.fast_input_ids || c.fast_error).map((c) => c.name);
      console.log(
        `tokenizer reference: transformers ${live.transformers} (${live.slow} vs ${live.fast}), Python ${live.python} ` +
          `(Unicode ${live.unicode}; Node ${nodeUnicode}): ${cases.length} texts compared${fuzzOk ? '' : ' (random texts left out: Python knows a newer Unicode than Node)'}; ` +
          `the fast tokenizer differs from the slow one on ${fast.length} (${fast.filter((n) => !n?.startsWith('fuzz ')).join(', ')} and random ones)`,
      );
      expect(wrong, wrong.slice(0, 10).join('\n')).toEqual([]);
    });
  });
});

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => resolve({ status: null, stdout, stderr, error: e.message }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => {}); // a Python that is not there has no pipe to write to
    child.stdin.end();
  });
}
