/* The dataset schemas, one CDDP_SCHEMA(ENUM, "root attribute", sym) each:
 * CDDP_SCHEMA_<ENUM> is the cddp_schema value (batch.h), the string the
 * file's root attribute `schema` carries, and `cddp_schema_<sym>` the
 * descriptor (schema.h) that the schema's own file defines. X-macro: define
 * CDDP_SCHEMA before including; it is undefined at the end. */
CDDP_SCHEMA(CTR, "cddp.ctr.v1", ctr)
CDDP_SCHEMA(TWOTOWER, "cddp.twotower.v1", twotower)
CDDP_SCHEMA(IMAGE, "cddp.image.v1", image)
#ifdef CDDP_TEST_SCHEMAS
CDDP_TEST_SCHEMAS /* test builds add test-only schemas here (tests/data/CMakeLists.txt) */
#endif

#undef CDDP_SCHEMA
