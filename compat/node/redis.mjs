// A redis-server of a test's own, for the suites that run bayou nodes as a
// cluster (--redis): see ../redis.mjs, shared with the browser suite.
export { startRedis } from '../redis.mjs';
