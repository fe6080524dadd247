/* The models --model can name, one CDDP_MODEL(name) each: name is the option
 * value and the suffix of the descriptor `cddp_model_<name>` (model.h) that
 * the model's own file defines. X-macro: define CDDP_MODEL before including;
 * it is undefined at the end. */
CDDP_MODEL(dlrm)
CDDP_MODEL(two_tower)
CDDP_MODEL(vit)
#ifdef CDDP_TEST_MODELS
CDDP_TEST_MODELS /* test builds add test-only models here (tests/model/CMakeLists.txt) */
#endif

#undef CDDP_MODEL
