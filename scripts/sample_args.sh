# Sourced by the results scripts: the loader arguments of each sample under ../shared/data, with
# the paper's per-dataset preprocessing (MODEL.md 6; item support 5 for the samples).
#   sample_args DATASET     (needs $shared = the shared data folder)
sample_args() {
  case "$1" in
    jd_appliances) echo "--format jd $shared/jd_micro_behavior_hup/HUP_Data/Applicances/JD_Applicances_sample $shared/jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Applicances_sample --min-support 5 --max-length 40" ;;
    jd_computers) echo "--format jd $shared/jd_micro_behavior_hup/HUP_Data/Computers/JD_Computers_sample $shared/jd_micro_behavior_hup/JD_Micro_Behaviors_Datasets_sample/JD_Computers_sample --min-support 5 --max-length 30" ;;
    trivago) echo "--format trivago $shared/trivago_recsys2019/trivago_val_100k.csv --min-support 5 --max-length 50" ;;
    *) echo "unknown dataset $1 (jd_appliances, jd_computers, trivago)" >&2; return 2 ;;
  esac
}
