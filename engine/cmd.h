/* cmd.h — subcommand entry points of the ringserve binary. Each lives in its
 * component's folder (topo/cmd_topo.c, workers/cmd_worker.c, ...). They take
 * argv with argv[0] = the subcommand name and return the process exit code. */
#ifndef RS_CMD_H
#define RS_CMD_H

int rs_cmd_serve(int argc, char **argv);       /* engine/cmd_serve.c */
int rs_cmd_coordinator(int argc, char **argv); /* engine/cmd_coordinator.c */
int rs_cmd_worker(int argc, char **argv);      /* workers/cmd_worker.c */
int rs_cmd_stage(int argc, char **argv);       /* workers/cmd_stage.c */
int rs_cmd_topo(int argc, char **argv);        /* topo/cmd_topo.c */
int rs_cmd_cache(int argc, char **argv);       /* engine/kvstore/cmd_cache.c */
int rs_cmd_infer(int argc, char **argv);       /* clients/c/cmd_infer.c */
int rs_cmd_bench(int argc, char **argv);       /* bench/cmd_bench.c */

#endif
