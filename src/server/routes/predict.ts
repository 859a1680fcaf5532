// POST /predict: a photo (multipart field `image`) and an optional text -> the top 5 classes, as the workshop
// answered them, from the prediction cache when the same image and text were seen by the same model.
// Computed answers go through the bounded queue (admission.ts): 503 with Retry-After when it is full, or when
// the request waited longer than REQUEST_TIMEOUT_MS. At most MAX_CONCURRENT_UPLOADS uploads are read at once
// (upload-slots.ts).
import type { RequestHandler, Response, Router } from 'express';
import multer from 'multer';

import { QueueError } from '../../classifier/batch-scheduler.js';
import type { Classification, FoodClassifier, Prediction } from '../../classifier/classifier.js';
import { ImageError } from '../../classifier/preprocess.js';
import { significantText } from '../../classifier/tokenizer.js';
import type { Admission } from '../admission.js';
import type { PredictionResponse } from '../api-schema.js';
import type { RouteContext } from '../app-context.js';
import { busy, HttpError, methodNotAllowed, missingField, validationError } from '../errors.js';
import { CLASSIFICATION_ERROR, DEFAULT_TEXT, QUEUE_FULL, TOP_K, WAITED_TOO_LONG } from '../messages.js';
import { predictionKey, type CachedPrediction } from '../prediction-cache.js';
import { hashingMemoryStorage, type StoredUpload } from '../upload-storage.js';
import { MAX_TEXT_BYTES } from '../request-body.js';
import { limitUploadBytes } from '../uploads.js';
import { strictRouter } from './router.js';

interface PredictRequest {
  image: StoredUpload;
  text: string;
  /** The model generation when the request arrived: an answer is cached only if it is still current. */
  generation: number;
  classifier: FoodClassifier;
}

/**
 * Before the upload is read: when the queue is already full, answer 503 at once (Node reads and discards the
 * rest of the body, so that the client can finish sending and read the answer). A cached answer could still
 * have been given, but parsing and hashing the upload to find out is the very cost a full queue must not
 * take on.
 */
function refuseWhenFull(admission: Admission, onRefused: () => void): RequestHandler {
  return (_req, _res, next) => {
    if (!admission.full) return next();
    admission.refuse();
    onRefused();
    next(busy(QUEUE_FULL, admission.retryAfterSeconds()));
  };
}

export function predictRoutes({ config, models, cache, admission, uploads, metrics, access }: RouteContext): Router {
  const upload = multer({
    storage: hashingMemoryStorage(config.maxUploadBytes),
    // One file; a few small fields (text is the only one read, up to MAX_TEXT_BYTES: more than 128 tokens need).
    limits: { fileSize: config.maxUploadBytes, fields: 5, parts: 10, fieldSize: MAX_TEXT_BYTES },
  });
  const handle: RequestHandler = async (req, res) => {
    const image = req.file as (Express.Multer.File & StoredUpload) | undefined;
    if (!image) {
      // A text field called image, or no field at all (which also covers a body that is not multipart).
      if (typeof req.body?.image === 'string') {
        throw validationError('value_error', ['body', 'image'], 'Expected a file upload for image but received a text field', req.body.image.slice(0, 100));
      }
      throw missingField('image');
    }
    const text = formText(req.body?.text);
    // The generation and the classifier are taken together, and the classifier held, before any await: a
    // reload may swap both later, and retires the old classifier only once this request lets go of it.
    const generation = models.generation;
    const classifier = models.classifier;
    const release = classifier.acquire();
    try {
      await answer(res, { image, text, generation, classifier });
    } finally {
      release();
    }
  };
  /** The answer from the cache, or computed by `classifier` (held by the caller until this settles). */
  const answer = async (res: Response, { image, text, generation, classifier }: PredictRequest): Promise<void> => {
    // Keyed by the part of the text its tokens come from (at most 12,928 characters for 128 tokens), not all
    // of it: the answer depends on that part alone, and hashing a whole long text would take the event loop.
    const significant = significantText(text, classifier.folder.maxLength);
    const key = predictionKey(classifier.modelId, significant, { sha256: image.sha256, length: image.size });
    const cached = await cache.get(key, classifier.folder.classNames);
    res.locals.log = { cache_hit: Boolean(cached), image_bytes: image.size, generation };
    if (cached) {
      res.json({ predictions: cached, cache_hit: true } satisfies PredictionResponse);
      return;
    }
    const ticket = admission.enter();
    if (!ticket) {
      metrics.rejected('queue_full');
      throw busy(QUEUE_FULL, admission.retryAfterSeconds());
    }
    const admitted = performance.now();
    let queueMs: number | undefined;
    let result: Classification;
    try {
      result = await classifier.classify(image.buffer, text, {
        topK: TOP_K,
        deadline: ticket.deadline,
        onForwardStart: () => {
          queueMs = performance.now() - admitted;
          ticket.started();
        },
      });
    } catch (err) {
      if (err instanceof ImageError) throw err;
      if (err instanceof QueueError) {
        admission.timedOut();
        metrics.rejected('timeout');
        throw busy(WAITED_TOO_LONG, admission.retryAfterSeconds(), err);
      }
      throw new HttpError(500, CLASSIFICATION_ERROR, { cause: err });
    } finally {
      ticket.release();
    }
    metrics.observePredict(queueMs, result.preprocessMs);
    res.locals.log = { ...res.locals.log, queue_ms: round(queueMs), preprocess_ms: round(result.preprocessMs), text_cached: result.textFeaturesCached };
    const predictions = result.predictions.map(toWorkshopPrediction);
    // An answer computed by a model that has been replaced meanwhile is returned, but not cached.
    if (models.generation === generation) void cache.set(key, predictions);
    res.json({ predictions, cache_hit: false } satisfies PredictionResponse);
  };
  const router = strictRouter();
  router.post(
    '/predict',
    access.user,
    limitUploadBytes(config.maxUploadBytes),
    refuseWhenFull(admission, () => metrics.rejected('queue_full')),
    uploads.middleware(),
    upload.single('image'),
    handle,
  );
  router.all('/predict', methodNotAllowed('POST'));
  return router;
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 10) / 10;
}

/** FastAPI reads an empty form value of an optional field as absent; several values: the last. */
function formText(value: unknown): string {
  const last = Array.isArray(value) ? value.at(-1) : value;
  return typeof last === 'string' && last !== '' ? last : DEFAULT_TEXT;
}

/** The workshop's JSON: `apple_pie` -> `apple pie`, and the probability as a percentage with two decimals. */
export function toWorkshopPrediction(prediction: Prediction): CachedPrediction {
  return {
    class_name: prediction.className.replaceAll('_', ' '),
    probability: prediction.probability,
    confidence: `${(prediction.probability * 100).toFixed(2)}%`,
  };
}
