// Every router of the service matches paths exactly: case-sensitive, and a trailing slash is another path.
// Express's default routes /RELOAD_MODEL and /reload_model/ to the route of /reload_model, so anything decided
// on the path's string (a guard, a rate-limit exemption, a log field) could disagree with the route that runs.
import { Router } from 'express';

export const ROUTER_OPTIONS = { caseSensitive: true, strict: true } as const;

export function strictRouter(): Router {
  return Router(ROUTER_OPTIONS);
}
