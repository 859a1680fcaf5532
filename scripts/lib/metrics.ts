// The one reader of the service's /metrics (Prometheus' text format) for the tests and the benchmarks. A sample
// is named as /metrics writes it: `name` or `name{labels}`, the labels in the service's order, e.g.
// `inference_batch_size_count{model="head"}`.

/** The samples of a /metrics text: each line `sample value` (comments skipped), the value as a number. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space > 0) samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** One sample's value in a /metrics text; throws, naming the sample, when the text has none. */
export function sampleOf(text: string, sample: string): number {
  const value = parseMetrics(text).get(sample);
  if (value === undefined) throw new Error(`no sample ${sample} in /metrics`);
  return value;
}

/** The service's /metrics text at `url` (GET now); throws, with the answer, on a status other than 200. */
export async function metricsText(url: string, reading = 'the metrics'): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status} (reading ${reading}): ${text}`);
  return text;
}

/** Every sample of the service's /metrics at `url` (GET now), for a reader of several (bench/). */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  return parseMetrics(await metricsText(url));
}

/** One sample's value in the service's /metrics at `url` (GET now); throws, naming the sample, when it is absent. */
export async function metric(url: string, sample: string): Promise<number> {
  return sampleOf(await metricsText(url, sample), sample);
}
