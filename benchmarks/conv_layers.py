"""Forward+backward time of the first two HIGH-4x70 conv layers, XLA vs PyTorch.

  python benchmarks/conv_layers.py [BATCH]      (default 8)

Times jax.grad of sum(relu(conv(x, k))) w.r.t. x and k (best of 3) for:
the XLA 2-D conv in NHWC (what flax nn.Conv emits), the 1-D conv over time
with frequency bins as channels and a block-Toeplitz weight
(models.audio.freq_channels_conv with one group),
the same as an explicit matmul, an im2col patch gather + matmul, and PyTorch's
conv2d in NCHW and channels_last. Prints one line per variant, in seconds.
"""
import time, sys, numpy as np, jax, jax.numpy as jnp, torch
torch.set_num_threads(2)
B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
R=3
def tj(f, *a):
  g=jax.jit(jax.grad(lambda *a: jnp.sum(jnp.maximum(f(*a),0)), argnums=(0,1)))
  jax.block_until_ready(g(*a)); ts=[]
  for _ in range(R):
    t=time.perf_counter(); jax.block_until_ready(g(*a)); ts.append(time.perf_counter()-t)
  return min(ts)
def tt(f, *a):
  a=[x.requires_grad_() for x in a]
  def run():
    for x in a: x.grad=None
    f(*a).relu().sum().backward()
  run(); ts=[]
  for _ in range(R):
    t=time.perf_counter(); run(); ts.append(time.perf_counter()-t)
  return min(ts)
rs=np.random.RandomState(0)
# layer 0: [B,322,96,1] * [4,70,1,256]
x0=rs.standard_normal((B,322,96,1)).astype(np.float32); k0=rs.standard_normal((4,70,1,256)).astype(np.float32)*0.05
conv=lambda x,k: jax.lax.conv_general_dilated(x,k,(1,1),'VALID',dimension_numbers=('NHWC','HWIO','NHWC'))
def toep(x,k):
  kt,kf,c,o=k.shape; F=x.shape[2]; P=F-kf+1
  w=jnp.stack([jnp.pad(k,((0,0),(p,F-kf-p),(0,0),(0,0))) for p in range(P)],axis=3).reshape(kt,F*c,P*o)
  y=jax.lax.conv_general_dilated(x.reshape(x.shape[0],x.shape[1],F*c),w,(1,),'VALID',dimension_numbers=('NWC','WIO','NWC'))
  return y.reshape(x.shape[0],y.shape[1],P,o)
def toep_mm(x,k):
  kt,kf,c,o=k.shape; B_,T,F,_=x.shape; P=F-kf+1
  w=jnp.stack([jnp.pad(k,((0,0),(p,F-kf-p),(0,0),(0,0))) for p in range(P)],axis=3).reshape(kt*F*c,P*o)
  xs=x.reshape(B_,T,F*c); Tp=T-kt+1
  cols=jnp.concatenate([xs[:,i:i+Tp] for i in range(kt)],axis=-1)
  return (cols@w).reshape(B_,Tp,P,o)
def im2col(x,k):  # patches [B,T',P,kt*kf] @ [kt*kf, o]
  kt,kf,c,o=k.shape; B_,T,F,_=x.shape; P=F-kf+1; Tp=T-kt+1
  xs=x[...,0]
  idx_f=np.arange(P)[:,None]+np.arange(kf)[None]
  cols=jnp.stack([xs[:,i:i+Tp][:,:,idx_f] for i in range(kt)],axis=3)  # [B,Tp,P,kt,kf]
  return cols.reshape(B_,Tp,P,kt*kf)@k.reshape(kt*kf,o)
X0,K0=jnp.asarray(x0),jnp.asarray(k0)
print('L0 jax conv nhwc', tj(conv,X0,K0), flush=True)
print('L0 jax toeplitz conv1d', tj(toep,X0,K0), flush=True)
print('L0 jax toeplitz matmul', tj(toep_mm,X0,K0), flush=True)
print('L0 jax im2col matmul', tj(im2col,X0,K0), flush=True)
tx=torch.from_numpy(x0.transpose(0,3,1,2).copy()); tk=torch.from_numpy(k0.transpose(3,2,0,1).copy())
print('L0 torch nchw', tt(lambda x,k: torch.nn.functional.conv2d(x,k), tx.clone(), tk.clone()), flush=True)
print('L0 torch cl', tt(lambda x,k: torch.nn.functional.conv2d(x,k), tx.clone().contiguous(memory_format=torch.channels_last), tk.clone().contiguous(memory_format=torch.channels_last)), flush=True)
# layer 1: [B,79,6,256] * [4,6,256,512]
x1=rs.standard_normal((B,79,6,256)).astype(np.float32); k1=rs.standard_normal((4,6,256,512)).astype(np.float32)*0.01
X1,K1=jnp.asarray(x1),jnp.asarray(k1)
print('L1 jax conv nhwc', tj(conv,X1,K1), flush=True)
print('L1 jax conv1d', tj(toep,X1,K1), flush=True)
print('L1 jax matmul', tj(toep_mm,X1,K1), flush=True)
tx=torch.from_numpy(x1.transpose(0,3,1,2).copy()); tk=torch.from_numpy(k1.transpose(3,2,0,1).copy())
print('L1 torch nchw', tt(lambda x,k: torch.nn.functional.conv2d(x,k), tx.clone(), tk.clone()), flush=True)
print('L1 torch cl', tt(lambda x,k: torch.nn.functional.conv2d(x,k), tx.clone().contiguous(memory_format=torch.channels_last), tk.clone().contiguous(memory_format=torch.channels_last)), flush=True)
