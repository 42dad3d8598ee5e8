//! Default-mode differences from MISP, one test each (named in the module docs), and the rest
//! of the extractor's own rules.

use super::*;
