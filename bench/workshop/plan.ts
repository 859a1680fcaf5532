// The plan of `npm run bench`'s study of the service on the workshop's full-size model (bench/workshop-service.ts
// runs it, bench/workshop/forwards.ts and service-runs.ts measure with it).

export interface WorkshopServicePlan {
  repo: string;
  /** The full-size model folder (export_model.py --random full). */
  modelDir: string;
  /** The folder has the int8 variant (export_model.py --precision int8): its parts and the service at PRECISION=int8 are measured too. */
  int8: boolean;
  /** ../shared/data (its food photos are the uploads), or a folder that lacks them (synthetic photos then). */
  sharedData: string;
  workDir: string;
  threads: number;
  concurrencies: number[];
  durationS: number;
  baselineIters: number;
  forwardIters: number;
  /** LibTorch builds to measure the forwards with: label -> addon file (the first is the service's, Debian's). */
  addons: { label: string; addon: string }[];
  progress(message: string): void;
}
