// The entry module functions-framework loads: it registers every function of this codebase.
// Each deployment picks one with --entry-point (FUNCTION_TARGET).
import './profile/index.js';
import './snapshot-catalog/index.js';
import './snapshot-mapping/index.js';
