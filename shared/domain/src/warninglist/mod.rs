//! MISP warninglists.
