// POST /predict: a photo (multipart field `image`) and an optional text -> the top 5 classes, as the workshop
// answered them, from the prediction cache when the same image and text were seen by the same model.
import { Router } from 'express';
import multer from 'multer';

import { DEFAULT_TEXT, type Prediction } from '../../classifier/classifier.js';
import { ImageError } from '../../classifier/preprocess.js';
import type { AppContext } from '../app.js';
import { HttpError, methodNotAllowed, missingField, validationError } from '../errors.js';
import { PredictionCache, type CachedPrediction } from '../prediction-cache.js';

export const TOP_K = 5;

export function predictRoutes({ config, models, cache }: AppContext): Router {
  const upload = multer({
    storage: multer.memoryStorage(),
    // One file; a few small fields (text is the only one read, up to 1 MiB: far more than 128 tokens need).
    limits: { fileSize: config.maxUploadBytes, fields: 20, parts: 40, fieldSize: 1024 * 1024 },
  });
  const router = Router();
  router.post('/predict', upload.single('image'), async (req, res) => {
    const image = req.file;
    if (!image) {
      // A text field called image, or no field at all (which also covers a body that is not multipart).
      if (typeof req.body?.image === 'string') {
        throw validationError('value_error', ['body', 'image'], 'Expected a file upload for image but received a text field', req.body.image.slice(0, 100));
      }
      throw missingField('image');
    }
    const text = formText(req.body?.text);
    // The generation and the classifier are taken together, before any await: a reload may swap both later.
    const generation = models.generation;
    const classifier = models.classifier;
    const key = PredictionCache.key(generation, text, image.buffer);
    const cached = cache.get(key);
    res.locals.log = { cache_hit: Boolean(cached), image_bytes: image.size, generation };
    if (cached) {
      res.json({ predictions: cached, cache_hit: true });
      return;
    }
    let top: Prediction[];
    try {
      top = await classifier.predict(image.buffer, text, TOP_K);
    } catch (err) {
      if (err instanceof ImageError) throw err;
      throw new HttpError(500, 'Classification error', { cause: err });
    }
    const predictions = top.map(toWorkshopPrediction);
    // An answer computed by a model that has been replaced meanwhile is returned, but not cached.
    if (models.generation === generation) cache.set(key, predictions);
    res.json({ predictions, cache_hit: false });
  });
  router.all('/predict', methodNotAllowed('POST'));
  return router;
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
