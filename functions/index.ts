// The entry module functions-framework loads: it registers every function of this codebase.
// Each deployment picks one with --entry-point (FUNCTION_TARGET).
import { hardenFunctionsFramework } from '../shared/http/harden-framework.js';
import './profile/index.js';
import './snapshot-catalog/index.js';
import './snapshot-mapping/index.js';
import './sync-mapping/index.js';
import './sync-mapping-shard/index.js';

// The framework builds its Express app once this module has loaded: patch it before that.
hardenFunctionsFramework();
